from django.urls import path

from audits.public import views

app_name = "public"
urlpatterns = [
    path("", views.attestation_list, name="attestations"),
    path("latest/", views.attestation_latest, name="attestation-latest"),
    path(
        "latest/envelope.json",
        views.attestation_latest_envelope,
        name="attestation-latest-envelope",
    ),
    path("verify/", views.verify_file, name="verify"),
    path("<int:sequence>/", views.attestation_detail, name="attestation"),
    path("<int:sequence>/envelope.json", views.attestation_envelope, name="attestation-envelope"),
    path("<int:sequence>/payload.json", views.attestation_payload, name="attestation-payload"),
]
