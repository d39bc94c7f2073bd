"""An ``apikey`` field in a form-encoded POST body counts as the request's key, as in
OctoPrint (which reads the key from its request values: query string, then form)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge
from .responses import error_response

FORM = b"application/x-www-form-urlencoded"


class FormKey:
    """For a form-encoded POST whose query string holds no ``apikey``: read the body,
    and append its ``apikey`` fields to the query string, where the key lookup finds
    them in OctoPrint's order (before the headers). The body is then handed on as it
    was read. Runs inside the request guard, so the body is already size-limited."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except PayloadTooLarge as exc:
            await error_response(exc)(scope, receive, send)
            return
        keys = [(k, v) for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True) if k == "apikey"]
        if keys:
            query = scope.get("query_string", b"")
            extra = urlencode(keys).encode()
            scope = dict(scope, query_string=query + b"&" + extra if query else extra)

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _applies(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        if b"apikey" in scope.get("query_string", b""):
            return False
        for name, value in scope["headers"]:
            if name == b"content-type":
                return bool(value.split(b";")[0].strip().lower() == FORM)
        return False
