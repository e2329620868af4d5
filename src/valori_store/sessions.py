"""Agent sessions (the documented import path): see :mod:`valori_store.history.sessions`."""

from valori_store.history.sessions import (
    START,
    TURN,
    Session,
    SessionInfo,
    Turn,
    TurnCheck,
    check_name,
    fork_session,
    list_sessions,
    open_session,
)

__all__ = ["START", "TURN", "Session", "SessionInfo", "Turn", "TurnCheck", "check_name", "fork_session",
           "list_sessions", "open_session"]
