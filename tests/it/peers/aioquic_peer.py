"""An independent QUIC peer for netcrab's interop tests (tests/it/quic.rs),
built on aioquic with the ALPN protocol netcrab uses by default.

    aioquic_peer.py server CERT KEY      echo every stream; prints "listening PORT"
    aioquic_peer.py reset CERT KEY       as server, but answers every stream
                                         with RESET_STREAM (error code 7)
    aioquic_peer.py client PORT MSG...   one stream per MSG on one connection,
                                         each sent then half-closed; prints
                                         "stream N: ECHO" per stream, in order
"""

import asyncio
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

ALPN = ["netcrab"]


class Echo(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
            self.transmit()


class Reset(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived):
            self._quic.reset_stream(event.stream_id, 7)
            self.transmit()


async def server(cert, key, protocol):
    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    config.load_cert_chain(cert, key)
    srv = await serve("127.0.0.1", 0, configuration=config, create_protocol=protocol)
    port = srv._transport.get_extra_info("sockname")[1]
    print(f"listening {port}", flush=True)
    await asyncio.Event().wait()


async def client(port, messages):
    config = QuicConfiguration(is_client=True, alpn_protocols=ALPN)
    config.verify_mode = ssl.CERT_NONE
    async with connect("127.0.0.1", port, configuration=config) as conn:

        async def one(msg):
            reader, writer = await conn.create_stream()
            writer.write(msg.encode())
            writer.write_eof()
            return await reader.read()

        echoes = await asyncio.wait_for(asyncio.gather(*(one(m) for m in messages)), 10)
        for i, echo in enumerate(echoes):
            print(f"stream {i}: {echo.decode()}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] in ("server", "reset"):
        protocol = Echo if sys.argv[1] == "server" else Reset
        asyncio.run(server(sys.argv[2], sys.argv[3], protocol))
    else:
        asyncio.run(client(int(sys.argv[2]), sys.argv[3:]))
