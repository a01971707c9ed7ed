"""A local server that speaks Twilio's REST contract, for tests, the demo and the load test.

Twilio's cloud is out of reach here, so the real ``twilio`` SDK is pointed at this server (see
:func:`fleetpipe.notification.provider.twilio_client`). It implements what FleetPipe uses of the
2010-04-01 API, shaped like Twilio's own responses:

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
  MessagingServiceSid, Body; ``whatsapp:`` addresses) → 201 with an ``SM…`` Message;
* ``GET …/Messages/{Sid}.json`` and ``GET …/Messages.json`` (filters To, From, DateSent,
  ``DateSent<``, ``DateSent>``; newest first; PageSize/Page paging with ``next_page_uri``);
* ``POST …/Calls.json`` (To, From, Twiml or Url) → 201 with a ``CA…`` Call; fetch and list Calls
  (filters To, From, Status);
* HTTP basic auth against the configured account SID and auth token (401, code 20003);
* Twilio's error payloads (``code``, ``message``, ``more_info``, ``status``): 400 with 21211 for an
  invalid 'To' number, 21614 for a number that cannot receive SMS, 21610 for an unsubscribed one,
  and Twilio's magic test numbers (+15005550001 invalid, +15005550009 not mobile, …).

It records every request (inspectable in-process through :class:`ContractStore`, or over HTTP
under ``/_contract/``) and can be told to fail: the next N requests answer 500 or 429, or hang
past the client's timeout (optionally after creating the resource, the ambiguous case).

The modules, by role:

* :mod:`.resources` — what the contract speaks of: Messages, Calls, errors, recorded requests;
* :mod:`.store` — what the server has received and created, and the faults it was told to inject;
* :mod:`.routes` — the REST contract and the ``/_contract/`` control API, independent of HTTP;
* :mod:`.server` — the HTTP server, run in a background thread by tests and the demo;
* :mod:`.__main__` — ``python -m fleetpipe_dev.twilio --port 18080`` runs it on its own.
"""

from fleetpipe_dev.twilio.server import TwilioContractServer
from fleetpipe_dev.twilio.store import ContractStore

__all__ = ["ContractStore", "TwilioContractServer"]
