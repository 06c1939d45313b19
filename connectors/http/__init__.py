"""The one HTTP layer every connector fetches through.

``HttpClient(settings.fetch).fetch(url)`` returns a ``FetchResult`` whose ``outcome`` says how
the fetch ended; nothing here raises for a network or HTTP problem. Connectors never open
sockets or build HTTP clients of their own.
"""

from connectors.http.client import HttpClient
from connectors.http.outcomes import FetchResult, Outcome, Redirect, Refusal, Timings, Validators

__all__ = ["FetchResult", "HttpClient", "Outcome", "Redirect", "Refusal", "Timings", "Validators"]
