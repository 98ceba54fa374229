from __future__ import annotations

import factory
from django.contrib.auth.models import User

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS, role_group

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            # Transactional tests flush the groups (and grants) the migrations made.
            self.groups.add(role_group(name))
        if create:
            self.save()


def designer(**kwargs) -> User:
    return UserFactory(roles=[DESIGNERS], **kwargs)


def connection_admin(**kwargs) -> User:
    return UserFactory(roles=[CONNECTION_ADMINS], **kwargs)
