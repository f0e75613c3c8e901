"""Roles: admins see everything, custodian users only their own custodian, others nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from audits.models import Custodian, CustodianUser
from audits.permissions import custodian_of, get_visible_or_404, is_admin, visible_to

pytestmark = pytest.mark.django_db


def test_custodian_user_sees_only_own_custodian(owner, teammate, outsider, custodian_a):
    users = CustodianUser.objects.all()
    assert set(visible_to(owner, users)) == {owner.custodian_link, teammate.custodian_link}
    assert set(visible_to(outsider, users)) == {outsider.custodian_link}
    assert custodian_of(owner) == custodian_a


def test_admin_sees_all(admin_user, owner, outsider):
    assert visible_to(admin_user, CustodianUser.objects.all()).count() == 2
    assert is_admin(admin_user)
    assert custodian_of(admin_user) is None


def test_anonymous_and_unlinked_users_see_nothing(django_user_model, owner):
    from django.contrib.auth.models import AnonymousUser

    plain = django_user_model.objects.create_user("plain", password="pw")
    assert not visible_to(AnonymousUser(), CustodianUser.objects.all()).exists()
    assert not visible_to(plain, CustodianUser.objects.all()).exists()


def test_other_custodians_row_is_404_not_403(owner, outsider):
    with pytest.raises(Http404):
        get_visible_or_404(outsider, CustodianUser.objects.all(), pk=owner.custodian_link.pk)
    assert get_visible_or_404(owner, CustodianUser.objects.all(), pk=owner.custodian_link.pk)


def test_custodian_link_refuses_staff(django_user_model, custodian_a):
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    with pytest.raises(ValidationError, match="cannot be staff"):
        CustodianUser(user=staff, custodian=custodian_a).full_clean()


def test_custodian_user_cannot_open_admin_even_if_flagged_staff(client, owner):
    client.force_login(owner)
    assert client.get("/admin/").status_code == 302
    owner.is_staff = True  # a mistake made elsewhere must not open the admin
    owner.save()
    assert not is_admin(owner)
    response = client.get("/admin/audits/custodian/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_can_open_admin(client, admin_user, demo):
    client.force_login(admin_user)
    response = client.get("/admin/audits/asset/")
    assert response.status_code == 200
    assert "AAPLx" in response.content.decode()


def test_reference_api_writes_need_an_admin(api, owner):
    body = {"name": "X", "lei": "5493001KJTIIGC8Y1R12"}
    assert api.post("/api/v1/custodians/", body, format="json").status_code in (401, 403)
    api.force_authenticate(owner)
    response = api.post("/api/v1/custodians/", body, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert Custodian.objects.count() == 2
