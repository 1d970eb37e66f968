"""The fleet's broker transport: kombu's Redis transport, guarded where a message crosses into the worker.

kombu 5.7 decodes what it pops from a Celery queue without a guard (`kombu/transport/redis.py`,
`Channel._brpop_read` and `Channel._get` call `loads` on the raw item) and hands the result on as a message
whatever it is. Anything else pushed into a queue, a line of text or a JSON list, raised out of the worker's
event loop: "Unrecoverable error", exit 1, and the message was gone. Here each popped message is checked
first; one kombu or Celery cannot take is dead-lettered with its reason (`<prefix>:dead`, like poison in a
tenant queue), logged once and not delivered, and the worker goes on serving.

Selected by `broker_transport` in celeryconfig, so every process of the fleet that reads a Celery queue uses it.
"""

from __future__ import annotations

import contextlib
import json
from queue import Empty
from typing import Any, NoReturn

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from core.logs import get_logger, redact
from tenancy.queues import get_queues

EXCERPT_CHARS = 10_000
"""Longest excerpt of a refused message kept in the dead letter: a huge message must not fill Redis twice."""

_NOT_JSON = object()


def json_type(value: Any) -> str:
    """How JSON names the type of a decoded value, for reasons a reader can act on."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def why_undeliverable(message: Any) -> str | None:
    """Why kombu could not deliver this decoded message (None when it can): each check is one whose failure
    crashed a worker, or dropped its connection, inside kombu's delivery."""
    if not isinstance(message, dict):
        return f"a JSON {json_type(message)}, not a message object"
    properties, headers = message.get("properties"), message.get("headers")
    if not isinstance(properties, dict):
        return "properties must be an object"
    tag, info = properties.get("delivery_tag"), properties.get("delivery_info")
    if isinstance(tag, bool) or not isinstance(tag, str | int):
        return "properties.delivery_tag must be a string or an integer"
    if not (isinstance(info, dict) and "exchange" in info and "routing_key" in info):
        return "properties.delivery_info must be an object with exchange and routing_key"
    if not isinstance(headers, dict):
        return "headers must be an object"
    if not isinstance(message.get("body"), str):
        return "body must be a string"
    if not all(isinstance(message.get(k), str | None) for k in ("content-type", "content-encoding")):
        return "content-type and content-encoding must be strings"
    return task_header_problem(headers)


def task_header_problem(headers: dict[str, Any]) -> str | None:
    """What Celery would fail on in a task message's headers once it had taken the message: a missing id
    raised out of its handler of unknown tasks, a malformed time limit out of its pool, with the task
    already counted as reserved. A message without a task header is no task message: Celery judges it."""
    if "task" not in headers:
        return None
    if not (isinstance(headers["task"], str) and isinstance(headers.get("id"), str)):
        return "a Celery task message needs string task and id headers"
    limits = headers.get("timelimit")
    if limits is not None and not (isinstance(limits, list) and len(limits) == 2
                                   and all(isinstance(x, int | float | None) for x in limits)):
        return "headers.timelimit must be [soft, hard] seconds"
    return None


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, with every popped message checked before it is delivered."""

    @property
    def _broker_errors(self) -> tuple[type[BaseException], ...]:
        return (*self.connection.connection_errors, *self.connection.channel_errors)

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.7's own _brpop_read (keep it in step on upgrades), with the decoding and the delivery guarded.
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            text = bytes_to_str(item)
            self._deliver_guarded(self._decode(text, dest), text, dest)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]  # as kombu does: no BRPOP in flight
            self._flush_brpop_reauth()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        # kombu 5.7's own _get (basic_get), with the decoding guarded.
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, pri))
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    return self._decode(bytes_to_str(item), queue)
            self._maybe_update_queues_expire(client, queue)
            raise Empty()

    def _decode(self, text: str, queue: str) -> dict[str, Any]:
        try:
            message = loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            self._refuse(queue, f"not JSON ({type(exc).__name__}: {str(exc)[:200]})", text, _NOT_JSON)
        reason = why_undeliverable(message)
        if reason is None:
            reason = self._body_problem(message)
        if reason is not None:
            self._refuse(queue, reason, text, message)
        result: dict[str, Any] = message
        return result

    def _body_problem(self, message: dict[str, Any]) -> str | None:
        encoding = message["properties"].get("body_encoding")
        if encoding is None:
            return None
        if encoding not in self.codecs:
            return f"unknown body_encoding {str(encoding)[:50]!r}"
        try:
            self.decode_body(message["body"], encoding)
        except (ValueError, TypeError) as exc:
            return f"body is not valid {encoding} ({exc})"
        return None

    def _deliver_guarded(self, message: dict[str, Any], text: str, queue: str) -> None:
        """Hand a message to its consumer (Celery). What the consumer raises for a message that passed the
        checks above (a task message whose body or headers Celery cannot read) would stop the worker: the
        message is dead-lettered instead and its slot in the prefetch window given back."""
        try:
            self.connection._deliver(message, queue)
        except Exception as exc:  # the worker's outermost boundary for one message: log it, keep serving
            # A broker error is the consumer's to handle (it reconnects). kombu counts KeyError among them,
            # but raised from a delivery it is Celery failing to read the message (a task header missing).
            if isinstance(exc, self._broker_errors) and not isinstance(exc, KeyError):
                raise
            tag = message["properties"]["delivery_tag"]
            with contextlib.suppress(KeyError):
                self.qos.get(tag)
                self.qos.reject(tag, requeue=False)
            self._refuse(queue, f"the worker could not take it ({type(exc).__name__}: {str(exc)[:200]})",
                         text, message, traceback=True)

    def _refuse(self, queue: str, reason: str, text: str, message: Any, traceback: bool = False) -> NoReturn:
        """Dead-letter a message with its reason, log one line, and deliver nothing (kombu's Empty: the poll
        goes on)."""
        reason = f"undeliverable message in Celery queue {queue}: {reason}"
        get_queues().dead_letter(reason, None, _excerpt(text, message))
        get_logger(queue=queue).warning("broker.message_dead_lettered", reason=reason, chars=len(text),
                                        exc_info=traceback)
        raise Empty()

    def unbind(self, exchange: str, routing_key: str, queue: str) -> bool:
        """Remove one binding from the routing table (kombu's Redis transport has no unbind); True if it was
        there."""
        member = self.sep.join([routing_key, "", queue])
        with self.conn_or_acquire() as client:
            client.srem(self.keyprefix_binding_permanent % (exchange,), member)
            return bool(client.srem(self.keyprefix_queue % (exchange,), member))


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the guarded channel."""

    Channel = Channel


def drop_shared_bindings(app: Any) -> int:
    """Each class queue now has an exchange of its own; before, all three were bound to the default exchange
    under the default routing key, so one message published there was delivered to every class. Bindings
    live in Redis and outlast that change: a worker drops them when it starts. Returns how many it dropped."""
    queues = app.amqp.queues
    exchange = queues.default_exchange.name
    routing_key = app.conf.task_default_routing_key or app.conf.task_default_queue
    stale = [q.name for q in queues.values() if q.exchange is not None and q.exchange.name != exchange]
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        if not isinstance(channel, Channel):
            return 0
        return sum(channel.unbind(exchange, routing_key, q) for q in stale)


def _excerpt(text: str, message: Any) -> str:
    """The message as an operator may see it: redacted like a log line (secret-named keys, credentials and
    e-mail addresses masked) and cut to EXCERPT_CHARS."""
    if message is not _NOT_JSON:
        with contextlib.suppress(RecursionError, ValueError):
            return json.dumps(redact(message), default=str)[:EXCERPT_CHARS]
    return str(redact(text[:EXCERPT_CHARS]))
