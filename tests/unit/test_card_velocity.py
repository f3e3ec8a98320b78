from streamer.testing import TopologyTestDriver
from topologies.card_velocity import VelocityConfig, build

MINUTE = 60_000


def tx(card: str, ts: int, amount: float = 10.0) -> dict[str, object]:
    return {"card": card, "amount": amount, "ts": ts}


def test_alerts_only_when_a_card_exceeds_the_limit_within_the_window() -> None:
    with TopologyTestDriver(build(VelocityConfig(max_transactions=3))) as driver:
        for ts in (0, 10_000, 20_000, 30_000):
            driver.pipe("transactions", "card-1", tx("card-1", ts))
        driver.pipe("transactions", "card-2", tx("card-2", 31_000))
        alerts = driver.read_key_values("alerts")
        assert alerts == [
            (
                "card-1",
                {
                    "card": "card-1",
                    "reason": "velocity",
                    "transactions": 4,
                    "window_start": 30_000 - MINUTE,
                    "window_end": 30_000,
                },
            )
        ]


def test_transactions_spread_beyond_the_window_do_not_alert() -> None:
    with TopologyTestDriver(build(VelocityConfig(max_transactions=3))) as driver:
        for ts in (0, 30_000, 61_000, 91_000, 122_000):
            driver.pipe("transactions", "card-1", tx("card-1", ts))
        assert driver.read_key_values("alerts") == []


def test_late_transactions_go_to_the_late_topic() -> None:
    config = VelocityConfig(grace_ms=1_000)
    with TopologyTestDriver(build(config)) as driver:
        driver.pipe("transactions", "card-1", tx("card-1", 10 * MINUTE))
        driver.pipe("transactions", "card-1", tx("card-1", MINUTE))
        late = driver.read_key_values("transactions-late")
        assert late == [("card-1", tx("card-1", MINUTE))]
        assert driver.counters()["late-records"] == 1
