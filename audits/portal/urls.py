from django.urls import path

from audits.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.statement_list, name="statements"),
    path("statements/<int:pk>/", views.statement_detail, name="statement"),
    path("statements/<int:pk>/raw", views.statement_raw, name="statement-raw"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke", views.token_revoke, name="token-revoke"),
]
