"""A trio stream that runs over another one and (optionally) RC4-encrypts both directions.

It is itself a :class:`trio.abc.Stream`, so the wire protocol runs over it unchanged. Bytes that
arrived with the end of the handshake (``prefix``) are returned first. ``receive_into`` lets a
reader fill its own buffer (decrypting in place for RC4): one copy less on the hot path.
"""

from __future__ import annotations

import trio

from ._rc4 import RC4


class PeerStream(trio.abc.Stream):
    """The stream a handshake hands back. ``encrypted`` tells whether RC4 is on."""

    def __init__(
        self,
        transport_stream: trio.abc.Stream,
        *,
        encryptor: RC4 | None = None,
        decryptor: RC4 | None = None,
        prefix: bytes = b"",
    ) -> None:
        self.transport_stream = transport_stream
        self._enc = encryptor
        self._dec = decryptor
        self._prefix = memoryview(bytes(prefix))
        self._scratch = bytearray()

    @property
    def encrypted(self) -> bool:
        """True when RC4 protects the payload."""
        return self._enc is not None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` (encrypted if RC4 is on)."""
        if self._enc is not None:
            data = self._enc.process(data)
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """See :meth:`trio.abc.SendStream.wait_send_all_might_not_block`."""
        await self.transport_stream.wait_send_all_might_not_block()

    def _take_prefix(self, n: int) -> bytes:
        out = bytes(self._prefix[:n])
        self._prefix = self._prefix[n:]
        return out

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive (and decrypt) some bytes; ``b""`` at end of stream."""
        if len(self._prefix):
            await trio.lowlevel.checkpoint()
            return self._take_prefix(len(self._prefix) if max_bytes is None else max_bytes)
        data = await self.transport_stream.receive_some(max_bytes)
        if self._dec is not None and data:
            return self._dec.process(data)
        return data

    async def receive_into(self, buffer: memoryview) -> int:
        """Receive into ``buffer``; returns the byte count (0 at end of stream)."""
        n = len(buffer)
        if len(self._prefix):
            await trio.lowlevel.checkpoint()
            chunk = self._take_prefix(n)
            buffer[: len(chunk)] = chunk
            return len(chunk)
        target = buffer
        if self._dec is not None:
            # encrypted: receive into a scratch buffer and let RC4 write the plaintext into the
            # caller's buffer (the decryption is the only user-space copy)
            if len(self._scratch) < n:
                self._scratch = bytearray(n)
            target = memoryview(self._scratch)[:n]
        transport = self.transport_stream
        if isinstance(transport, trio.SocketStream):
            got: int = await transport.socket.recv_into(target, n)
        else:
            data = await transport.receive_some(n)
            got = len(data)
            target[:got] = data
        if self._dec is not None and got:
            self._dec.process_into(target[:got], buffer[:got])
        return got

    async def send_eof(self) -> None:
        """Half-close if the transport supports it."""
        send_eof = getattr(self.transport_stream, "send_eof", None)
        if send_eof is None:
            raise trio.ClosedResourceError("transport does not support send_eof")
        await send_eof()

    async def aclose(self) -> None:
        """Close the transport."""
        await self.transport_stream.aclose()
