"""Only the poll leader polls; a replica that becomes leader starts from a new baseline."""

from __future__ import annotations

from app.correlate.identity import NodeIdentity
from app.poll.poller import build_poller
from app.settings import Settings
from tests.poll.fake_ztunnel import FakeZtunnel, serve
from tests.poll.test_scrape import A_TO_B, Clock


async def test_standby_polls_nothing_and_a_new_leader_baselines_first() -> None:
    fake, clock, leader = FakeZtunnel(), Clock(), [True]
    fake.add(A_TO_B, opened=5, req=1000, resp=9000)
    with serve(fake) as url:
        poller = build_poller(
            Settings(ztunnel_targets=url),
            lambda s: None,
            NodeIdentity(),
            clock=clock,
            may_poll=lambda: leader[0],
        )
        assert poller is not None
        assert await poller.poll_once() == []  # leader: baseline
        fake.add(A_TO_B, opened=1, req=10, resp=20)
        clock.now += 10
        assert [s.bytes_sent for s in await poller.poll_once()] == [10]

        leader[0] = False  # another replica took the lock: it counts what happens now
        fake.add(A_TO_B, opened=1, req=500, resp=600)
        clock.now += 10
        assert await poller.poll_once() == []
        assert poller.readiness().detail["standby"] is True

        leader[0] = True  # back: a new baseline, never the 500 bytes the other replica counted
        clock.now += 10
        assert await poller.poll_once() == []
        fake.add(A_TO_B, opened=1, req=7, resp=8)
        clock.now += 10
        assert [s.bytes_sent for s in await poller.poll_once()] == [7]
        assert poller.readiness().detail["standby"] is False
        await poller.aclose()
