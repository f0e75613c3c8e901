import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "porapp.settings")
django_application = get_wsgi_application()

# Imported after Django is set up: successful public proof answers skip Django's request
# cycle (audits/fast_proofs.py says why and how they stay identical); all else is Django's.
from audits.fast_proofs import ProofFastPath  # noqa: E402

application = ProofFastPath(django_application)
