from django.urls import path

from audits.public import views

app_name = "proofs"
urlpatterns = [
    path("verify/", views.proof_verify, name="verify"),
]
