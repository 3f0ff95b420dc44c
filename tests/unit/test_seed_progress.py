"""The seeding progress line `make demo` prints while the sample tickets load."""

from incident_ops.embedded_desk.seeding import progress_line


def test_progress_says_done_of_total_rate_and_time_left():
    assert progress_line(480, 2000, 120.0) == \
        "seeding: 480/2000 tickets, 4.0/s, about 6 min 20 s left"
    assert progress_line(1990, 2000, 100.0) == \
        "seeding: 1990/2000 tickets, 19.9/s, about 1 s left"


def test_progress_before_the_first_ticket_says_rt_is_starting():
    assert progress_line(0, 2000, 10.0) == "seeding: 0/2000 tickets (starting RT, 10 s)"
