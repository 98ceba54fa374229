from __future__ import annotations

import factory
from django.contrib.auth.models import Group, User

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS

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
            # get_or_create: transactional tests flush the groups the migration made.
            self.groups.add(Group.objects.get_or_create(name=name)[0])
        if create:
            self.save()


def designer(**kwargs) -> User:
    return UserFactory(roles=[DESIGNERS], **kwargs)


def connection_admin(**kwargs) -> User:
    return UserFactory(roles=[CONNECTION_ADMINS], **kwargs)
