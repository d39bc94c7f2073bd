"""The MQTT link: this host on the broker, for Home Assistant and for the fleet.

Imported only when ``sysmenu.mqtt`` is configured (aiomqtt and paho cost memory).
One task keeps the connection: it connects (MQTT v5, falling back to 3.1.1), says
``online`` (the last will says ``offline``), publishes discovery and the commands'
last states, answers requests, and reconnects with exponential backoff when the
broker goes away. Nothing here is awaited by HTTP: run events are queued by the
runner's observer and published by the link when it can, in order, QoS 1; what
queues up while the broker is away is sent after reconnecting (up to
``sysmenu.mqtt.buffer`` messages; the oldest go first when it overflows).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Collection
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from . import mqtt_topics as topics
from .catalogue import CommandSpec
from .errors import SysmenuError
from .invocation import Invocation
from .logs import RateLimitedLog
from .middleware import MAX_BODY
from .models import Who
from .mqtt_outbox import Outbox, Outgoing
from .mqtt_refusals import hint, refusals, twin_hint
from .mqtt_settings import MqttSettings
from .runner import Run

if TYPE_CHECKING:
    from .state import State

log = logging.getLogger("sysmenu.mqtt")

_FIRST_DELAY = 1.0
_STABLE = 30.0  # seconds a connection must last for the reconnection backoff to start over
_BATCH = 20  # messages in flight at once (paho's default limit of unacknowledged ones)


class MqttLink:
    """This server's presence on the broker (see the module's docstring)."""

    def __init__(self, state: State, settings: MqttSettings) -> None:
        self.state = state
        self.settings = settings
        self.prefix = settings.prefix
        self.url = topics.page_url(settings, state.config.sysmenu.host, state.config.sysmenu.port)
        self.protocol = aiomqtt.ProtocolVersion.V5
        self.outbox = Outbox(settings.buffer)
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections so far (a new one resets the backoff)
        self.last_error: str | None = None  # why the last attempt or connection ended
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._published: dict[str, bytes] = {}  # discovery topic -> payload in force
        self._states: set[str] = set()  # the state topics of the commands offered
        self._malformed = RateLimitedLog(log)
        self._refused = RateLimitedLog(log)
        self._since = 0.0  # when the last connection began
        state.runner.observers.append(self)
        state.config_listeners.append(self.on_config)

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_connected(), name="mqtt")

    async def stop(self, grace: float = 2.0) -> None:
        """Say ``offline``, send what is queued (for up to `grace` seconds), disconnect."""
        if self._task is None:
            return
        if self.connected.is_set():
            self.outbox.put(Outgoing(topics.status_topic(self.prefix), b"offline", retain=True))
            deadline = time.monotonic() + grace
            while self.outbox and self.connected.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._requests):
            task.cancel()

    async def _keep_connected(self) -> None:
        delay = _FIRST_DELAY
        failures = 0  # attempts in a row that did not connect, or connected only briefly
        brief = 0  # connections in a row that ended within _STABLE seconds
        while True:
            before = self.connections
            error: Exception | None = None
            try:
                await self._session()
            except (aiomqtt.MqttError, OSError) as exc:
                if topics.refuses_v5(exc) and self.protocol == aiomqtt.ProtocolVersion.V5:
                    # for this server's life (v5 again after a restart of sysmenu): trying v5
                    # at every reconnection would cost a refused attempt and a log line each time
                    log.info("the broker does not speak MQTT v5: using 3.1.1 (no request/response)")
                    self.protocol = aiomqtt.ProtocolVersion.V311
                    continue
                error = exc
            except Exception as exc:  # a bug must not end the link for good
                log.exception("MQTT link failed")
                error = exc
            connected, lasted = self.connections > before, time.monotonic() - self._since
            if connected and lasted >= _STABLE:  # the backoff starts over
                delay, failures, brief = _FIRST_DELAY, 0, 0
            else:  # no connection, or one that ended at once (flapping): wait longer each time
                failures, brief = failures + 1, brief + connected
            self.last_error = str(error or "disconnected")
            if connected and brief >= 2:
                self.last_error += f", after {lasted:.1f} s connected: {twin_hint(self.settings)}"
            often = failures <= 1 or (connected and brief == 2) or delay >= self.settings.reconnect_max
            level = logging.WARNING if often else logging.DEBUG
            where = f"{self.settings.host}:{self.settings.port}"
            log.log(level, "MQTT broker %s: %s (retrying in about %.0f s)", where, self.last_error, delay)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.settings.reconnect_max)

    def _client_for(self) -> aiomqtt.Client:
        s = self.settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password(),
            identifier=s.client_identity(),
            protocol=self.protocol,
            will=aiomqtt.Will(topics.status_topic(self.prefix), b"offline", qos=1, retain=True),
            keepalive=s.keepalive,
            timeout=10,
            tls_context=topics.tls_context(s),
            socket_options=topics.NO_DELAY,
            logger=logging.getLogger("sysmenu.mqtt.client"),
        )
        refusals(client).reports.append(self._report_refusal)
        return client

    def _report_refusal(self, topic: str, reason: str) -> None:
        self._refused.warning(
            "the MQTT broker refused this host's message on %r (%s): %s", topic, reason, hint(self.settings)
        )

    async def _session(self) -> None:
        """One connection, from CONNACK until it breaks."""
        try:
            client = self._client_for()
        except OSError as exc:  # the password file, the TLS files
            raise aiomqtt.MqttError(f"cannot set up the connection: {exc}") from None
        async with client:
            self._client = client
            self.connections += 1
            self._since = time.monotonic()
            log.info(
                "connected to the MQTT broker %s:%s as %s (topics under %s/)",
                self.settings.host,
                self.settings.port,
                self.settings.client_identity(),
                self.prefix,
            )
            sender: asyncio.Task[None] | None = None
            try:
                await client.subscribe(self._subscriptions(), qos=1)
                await self._announce(client)  # online first, then what queued up meanwhile
                sender = asyncio.create_task(self._send(client))
                self.connected.set()
                async for message in client.messages:
                    self._receive(message)
            finally:
                self.connected.clear()
                self._client = None
                if sender is not None:
                    sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
                topics.settle(client)

    def _subscriptions(self) -> list[tuple[str, int]]:
        s = self.settings
        # its own states and discovery too: retained ones of commands no longer offered (all
        # discovery, with `discovery: false`) are removed
        subscriptions = [
            (f"{self.prefix}/request/+/+/+", 1),
            (f"{self.prefix}/state/+/+", 1),
            (f"{s.discovery_prefix}/+/{s.node}/+/config", 1),
        ]
        if s.discovery:
            subscriptions.append((f"{s.discovery_prefix}/status", 1))
        return subscriptions

    # -- publishing ---------------------------------------------------------------

    async def _send(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order; an item leaves it only once the broker has it."""
        while True:
            while self.outbox:
                # Sent back to back, in order, and acknowledged together: waiting for each
                # PUBACK before the next send would cost a round trip per message.
                batch = self.outbox.first(_BATCH)
                await asyncio.gather(*(self._publish(client, item) for item in batch))
                self.outbox.sent(batch)
            await self.outbox.wait()

    async def _publish(self, client: aiomqtt.Client, item: Outgoing) -> None:
        properties = self._properties(item)
        await client.publish(item.topic, item.payload, qos=1, retain=item.retain, properties=properties)

    def _properties(self, item: Outgoing) -> Properties | None:
        if item.correlation is None or self.protocol != aiomqtt.ProtocolVersion.V5:
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.CorrelationData = item.correlation
        return properties

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Right after connecting: online, what this host offers, discovery."""
        await client.publish(topics.status_topic(self.prefix), b"online", qos=1, retain=True)
        specs = self.exposed()
        states, gone = {topics.state_topic(self.prefix, s) for s in specs}, self._states
        self._states = states
        document = topics.device_document(self.settings, specs, self.url)
        await client.publish(topics.device_topic(self.prefix), topics.dumps(document), qos=1, retain=True)
        if self.settings.discovery:
            await self._publish_discovery(client, specs)
        for topic in gone - states:  # a command that left takes its last state along (after
            self.outbox.put(Outgoing(topic, b"", retain=True))  # its sensor: none reads it empty)

    async def _publish_discovery(self, client: aiomqtt.Client, specs: list[CommandSpec]) -> None:
        wanted = {t: topics.dumps(p) for t, p in topics.discovery(self.settings, specs, self.url).items()}
        for topic in set(self._published) - set(wanted):  # commands that left the config
            await client.publish(topic, b"", qos=1, retain=True)
        for topic, payload in wanted.items():
            await client.publish(topic, payload, qos=1, retain=True)
        self._published = wanted

    def status(self) -> dict[str, Any]:
        """The link as ``GET /api/status`` shows it."""
        s = self.settings
        return {
            "broker": f"{s.host}:{s.port}",
            "prefix": self.prefix,
            "connected": self.connected.is_set(),
            "protocol": "5" if self.protocol == aiomqtt.ProtocolVersion.V5 else "3.1.1",
            "last_error": self.last_error,
            "queued": len(self.outbox),
            "dropped": self.outbox.dropped,
        }

    def exposed(self) -> list[CommandSpec]:
        catalogue = self.state.catalogue
        return [s for specs in catalogue.specs.values() for s in specs if topics.exposed(s, self.settings)]

    def on_config(self) -> None:
        """The config was reloaded: announce the new set of commands."""
        client = self._client
        if client is not None and self.connected.is_set():
            self._spawn(self._announce(client))

    def run_started(self, run: Run) -> None:
        self._observe("start", run)

    def run_ended(self, run: Run) -> None:
        self._observe("end", run)

    def _observe(self, event: str, run: Run) -> None:
        try:
            self.on_run(event, run)
        except Exception:  # nothing here may disturb the runner
            log.exception("cannot queue the MQTT %s event of run %s", event, run.id)

    def on_run(self, event: str, run: Run) -> None:
        """Runner observer: the command's state (retained) and an event, queued."""
        if not topics.exposed(run.spec, self.settings):
            return
        record = run.record(output=False)
        state = topics.run_state(record)
        current = self.state.catalogue.get(run.spec.source, run.spec.action)
        if current is not None and topics.exposed(current, self.settings):  # else it left meanwhile
            self.outbox.put(
                Outgoing(topics.state_topic(self.prefix, run.spec), topics.dumps(state), retain=True)
            )
        if event == "end":
            body = topics.result(self.settings.host_name, record, _output(run))
        else:
            body = {"host": self.settings.host_name, **state}
        body = {"event": event, "source": run.spec.source, "action": run.spec.action, **body}
        self.outbox.put(Outgoing(topics.event_topic(self.prefix, run.spec), topics.dumps(body)))

    # -- receiving ----------------------------------------------------------------

    def _receive(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        s = self.settings
        if s.discovery and topic == f"{s.discovery_prefix}/status":
            if message.payload == b"online" and self._client is not None:
                log.info("Home Assistant is online: discovery sent again")
                self._spawn(self._announce(self._client))
            return
        if topics.is_own_discovery(s, topic):
            self._forget_stale(message, topic, self._published)
            return
        if topics.is_state_topic(self.prefix, topic):
            self._forget_stale(message, topic, self._states)
            return
        request = topics.parse_request(self.prefix, topic)
        if request is None:
            self._malformed.warning("MQTT message on an unexpected topic dropped: %r", topic[:200])
            return
        source, action, sender = request
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        reply_to, correlation = topics.reply_address(message.properties)
        if reply_to is not None and not topics.may_answer_on(s, reply_to):
            self._malformed.warning(
                "MQTT request on %r dropped: answer asked on %r", topic[:200], reply_to[:200]
            )
            return
        problem = topics.request_problem(sender, payload, MAX_BODY)
        if problem is not None:
            self._malformed.warning("MQTT request on %r dropped: %s", topic[:200], problem[0][:300])
            if reply_to:
                self._reply(reply_to, correlation, {"error": problem[0], "status": problem[1]})
            return
        self._spawn(self._run(source, action, sender, payload, reply_to, correlation))

    def _forget_stale(self, message: aiomqtt.Message, topic: str, wanted: Collection[str]) -> None:
        """A retained discovery or state message of this host that names no command any
        more (left by an earlier config): remove it. (Its own live messages are not retained.)"""
        if message.retain and message.payload and topic not in wanted and self._client:
            log.info("removing the stale retained message %s", topic)
            self._spawn(self._client.publish(topic, b"", qos=1, retain=True))

    async def _run(
        self,
        source: str,
        action: str,
        sender: str,
        payload: bytes,
        reply_to: str | None,
        correlation: bytes | None,
    ) -> None:
        spec = self.state.catalogue.get(source, action)
        if spec is None or not topics.exposed(spec, self.settings):
            self._malformed.warning("MQTT request for %s:%s, which is not offered over MQTT", source, action)
            if reply_to:
                error = f"Command {source}:{action} not found"
                self._reply(reply_to, correlation, {"error": error, "status": 404})
            return
        who = Who(user=sender, auth="mqtt", client=f"mqtt://{self.settings.host}:{self.settings.port}")
        try:
            # arguments are checked by the code that checks them over HTTP
            values = topics.request_values(spec, payload)
            invocation = Invocation.of(spec, values)
            run = await self.state.runner.start(spec, who, None, invocation)
        except SysmenuError as exc:  # bad arguments (400) are malformed: logged rate-limited
            say = self._malformed.warning if exc.status_code == 400 else log.info
            say("MQTT request of %s for %s:%s refused: %s", sender, source, action, exc.message)
            if reply_to:
                self._reply(reply_to, correlation, {"error": exc.message, "status": exc.status_code})
            return
        store = self.state.store
        shown = {"arguments": invocation.shown} if invocation.shown is not None else {}
        await store.db.run(
            store.audit.record, "execute", who, source=source, action=action, run=run.id, **shown
        )
        if reply_to:
            await run.done.wait()
            outcome = topics.result(self.settings.host_name, run.record(output=False), _output(run))
            self._reply(reply_to, correlation, outcome)

    def _reply(self, topic: str, correlation: bytes | None, body: dict[str, Any]) -> None:
        payload = topics.dumps({"host": self.settings.host_name, **body})
        self.outbox.put(Outgoing(topic, payload, False, correlation))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._requests.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, aiomqtt.MqttError):  # the connection broke: the session reconnects
                log.debug("MQTT publish failed: %s", exc)
            else:
                log.error("MQTT task failed", exc_info=exc)


def _output(run: Run) -> str:
    return (run.stdout.text() + run.stderr.text())[-topics.OUTPUT_TAIL :]
