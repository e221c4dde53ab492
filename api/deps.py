"""FastAPI dependencies, as ``Annotated`` aliases routers put in their signatures."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.auth import Caller, authenticate
from api.container import Container

__all__ = ["CallerDep", "ClientAddress", "ContainerDep", "get_caller", "get_container"]


def get_container(request: Request) -> Container:
    """The app's container (built by the lifespan)."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_caller(
    c: ContainerDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>` issued by `yima token add`")
    ] = None,
) -> Caller:
    """The organisation behind the bearer token (401 problem otherwise)."""
    return authenticate(c.engine, authorization)


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_client_address(request: Request) -> str:
    """The client's address, the rate-limit key of public endpoints.

    Behind a reverse proxy run uvicorn with ``--proxy-headers`` so that this is the real
    client and not the proxy.
    """
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(get_client_address)]
