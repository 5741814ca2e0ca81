"""Run by Label Studio's own interpreter (bench/.venv-ls) with the server's environment: add N labeler users to
the organization, as LS's sign-up does (user, org membership, active organization; the token comes from LS's
post_save signal), and print their API tokens as a JSON list. Idempotent: an existing user keeps its token.

    bench/.venv-ls/bin/python bench/_ls_users.py N
"""

import json
import os
import pathlib
import sys


def main() -> None:
    import label_studio

    sys.path.insert(0, str(pathlib.Path(label_studio.__file__).parent))  # LS's apps import as top-level modules
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
    import django

    django.setup()
    from organizations.models import Organization
    from rest_framework.authtoken.models import Token
    from users.models import User

    org = Organization.objects.first()
    tokens = []
    for i in range(int(sys.argv[1])):
        email = f"labeler{i:03d}@example.com"
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=None)  # unusable: no slow hashing; tokens only
            user.username = email.split("@")[0]
            org.add_user(user)
            user.active_organization = org
            user.save(update_fields=["username", "active_organization"])
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    print(json.dumps(tokens))


if __name__ == "__main__":
    main()
