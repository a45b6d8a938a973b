"""A ``requests`` adapter whose sockets are shut at a deadline (a zip download's whole time).

Socket timeouts count silence, not time: a server that sends its headers, or its TLS
handshake, a byte at a time never trips one, so without this the download's deadline would be
checked only once the body flows. Used by :mod:`mlrun_magic.project.zipdownload`.
"""

from __future__ import annotations

import socket
import threading

from requests.adapters import HTTPAdapter


class DeadlineAdapter(HTTPAdapter):
    """``requests``' adapter, but every socket it opens is shut when the download's time is
    up: socket timeouts count silence, not time, so a server sending its headers (or its TLS
    handshake) a byte at a time would otherwise hold the download for ever."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        super().__init__()  # makes the pool manager: _sockets must exist
        self._timer.start()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self._watch(self.poolmanager)

    def proxy_manager_for(self, proxy, **kwargs):
        manager = super().proxy_manager_for(proxy, **kwargs)
        self._watch(manager)
        return manager

    def _watch(self, manager) -> None:
        if getattr(manager, "_mlrun_magic_watched", False):
            return
        manager._mlrun_magic_watched = True
        sockets = self._sockets

        def watched(pool_class):
            class Connection(pool_class.ConnectionCls):
                def _new_conn(self):
                    sock = super()._new_conn()
                    sockets.append(sock)
                    return sock

            return type(pool_class.__name__, (pool_class,), {"ConnectionCls": Connection})

        manager.pool_classes_by_scheme = {scheme: watched(pool) for scheme, pool
                                          in manager.pool_classes_by_scheme.items()}

    def _expire(self) -> None:
        self.expired = True
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._timer.cancel()
