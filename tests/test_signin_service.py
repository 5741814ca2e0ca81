"""Sign-in through the service: the throttle on failed attempts (SQLite and PostgreSQL)."""

from server.db import run_in_transaction


def test_failed_sign_ins_wait_longer_and_longer_and_a_success_resets_them(blobs):
    """The throttle itself, without a clock race: each failure after the third doubles the wait."""
    from datetime import UTC, datetime, timedelta

    from server.auth.models import User
    from server.auth.service import create_user
    from server.auth.signin import set_password, sign_in
    from server.errors import TooManyAttempts, Unauthorized

    run_in_transaction(lambda db: create_user(db, name="ana", role="labeler"))
    run_in_transaction(lambda db: set_password(db, name="ana", password="the right one"))

    def attempt(password: str):
        def work(db):
            try:
                return sign_in(db, name="ana", password=password, hours=1, first_block_s=5)
            except (Unauthorized, TooManyAttempts) as exc:
                return exc

        return run_in_transaction(work)

    def unblock():
        def work(db):
            user = db.query(User).filter_by(name="ana").one()
            user.blocked_until = user.blocked_until - timedelta(hours=1) if user.blocked_until else None

        run_in_transaction(work)

    def wait_now() -> float:
        def work(db):
            user = db.query(User).filter_by(name="ana").one()
            if user.blocked_until is None:
                return 0.0
            until = user.blocked_until if user.blocked_until.tzinfo else user.blocked_until.replace(tzinfo=UTC)
            return (until - datetime.now(UTC)).total_seconds()

        return run_in_transaction(work)

    waits = []
    for _ in range(5):
        unblock()
        assert isinstance(attempt("wrong"), Unauthorized)
        waits.append(wait_now())
    assert waits[:2] == [0, 0] and 3 < waits[2] <= 5 and 8 < waits[3] <= 10 and 18 < waits[4] <= 20, waits
    assert isinstance(attempt("the right one"), TooManyAttempts)  # even the right password waits
    unblock()
    assert isinstance(attempt("the right one"), tuple)  # signed in: the count starts again
    assert isinstance(attempt("wrong"), Unauthorized) and wait_now() == 0
