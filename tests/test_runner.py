"""The runner: process groups, timeouts, kill, bounded output, concurrency, recovery."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sysmenu.catalogue import CommandSpec
from sysmenu.errors import BadRequest, Conflict, Stopping, SysmenuError
from sysmenu.models import Who
from sysmenu.run import Run
from sysmenu.runner import DuplicateKey, Runner
from sysmenu.store import Store
from tests.proctable import processes_with, wait_until_gone, zombies_of

pytestmark = pytest.mark.anyio
WHO = Who("tester", "test", "local")


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The runner runs on asyncio's loop in tests and on uvloop under uvicorn: test both."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[Runner]:
    store = Store(tmp_path / "runs.db")
    r = Runner(store.runs, default_timeout=30, kill_grace=0.05, output_limit=4096, pipe_grace=0.1)
    yield r
    await r.close()
    store.close()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A file the test creates to let a waiting command go on (see `waits_for`)."""
    return tmp_path / f"gate-{uuid.uuid4().hex}"


def waits_for(path: Path) -> str:
    """Shell that waits until `path` exists: the test, not a sleep, decides when it goes on."""
    return f"until [ -e {path} ]; do sleep 0.01; done"


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 10 s")


def spec(command: str | None, action: str = "a", **kw: object) -> CommandSpec:
    return CommandSpec("custom", action, action.title(), command, **kw)  # type: ignore[arg-type]


# After `cmd &`: wait until the background process is `cmd` (exec'd), so that its
# recorded command line is not the forked shell's.
EXECED = "until tr '\\0' ' ' </proc/$!/cmdline | grep -q ^sleep; do sleep 0.01; done; "


def marker() -> str:
    """A unique sleep duration: finds this test's processes in the process table."""
    return f"100.{uuid.uuid4().int % 10**9}"


async def test_ok_run_is_recorded(runner: Runner) -> None:
    run = await runner.start(spec("echo out; echo err >&2"), WHO)
    assert runner.runlog.get(run.id).state == "running"  # type: ignore[union-attr]
    await run.done.wait()
    row = runner.runlog.get(run.id)
    assert row is not None
    assert (row.state, row.returncode, row.stdout, row.stderr) == ("ok", 0, "out\n", "err\n")
    assert row.user == "tester" and row.duration >= 0


async def test_failed_run(runner: Runner) -> None:
    run = await runner.start(spec("exit 4"), WHO)
    await run.done.wait()
    assert (run.state, run.returncode) == ("failed", 4)


def up_then(command: str) -> str:
    """`command` run by a process that first prints "up": once the line is out, the
    process exists (and becomes `command` by exec, keeping its pid and group)."""
    return f"{{ echo up; exec {command}; }}"


async def timed_out(runner: Runner, command: str, ups: int, m: str) -> Run:
    """A run of `command` ended by its timeout after its `ups` processes printed "up"
    (`m`: the marker in their command lines).

    A short timeout first: one that came before they were all up proves nothing about
    killing them, so that attempt (it must end all it started all the same) is made again
    with twice the time, as a loaded machine may need."""
    timeout = 0.05
    while True:
        run = await runner.start(spec(command, timeout=timeout), WHO)
        await asyncio.wait_for(run.done.wait(), 10)
        assert run.state == "timeout"
        if run.stdout.text() == "up\n" * ups:
            return run
        assert timeout < 5, f"not all up within {timeout} s: {run.stdout.text()!r}"
        assert wait_until_gone(m) == []
        timeout *= 2


async def test_timeout_kills_the_whole_group(runner: Runner) -> None:
    m = marker()
    # a background pipeline and a foreground child, as `sleep m | cat & sleep m`
    run = await timed_out(runner, f"{up_then(f'sleep {m}')} | cat & ({up_then(f'sleep {m}')})", 2, m)
    assert run.signal is not None
    assert wait_until_gone(m) == []
    assert zombies_of(os.getpid()) == []


async def test_kill_sends_term_then_kill(runner: Runner, gate: Path) -> None:
    m = marker()
    run = await runner.start(spec(f"trap '' TERM; touch {gate}; sleep {m}"), WHO)
    await until(gate.exists)  # TERM is ignored from here on
    run.kill()
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "killed"
    assert wait_until_gone(m) == []


async def test_background_jobs_are_left_running_and_recorded(runner: Runner) -> None:
    """As a shell (and OctoPrint) leaves them: the answer does not wait for them."""
    m = marker()
    run = await runner.start(spec(f"sleep {m} & {EXECED} echo started"), WHO)
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "ok"
    assert run.stdout.text() == "started\n"
    (left,) = processes_with(f"sleep {m}")
    assert run.leftovers == [{"pid": left, "command": f"sleep {m}", "killed": False}]
    row = runner.runlog.get(run.id)
    assert row is not None and row.leftovers == run.leftovers
    os.kill(left, 9)
    assert wait_until_gone(m) == []


async def test_background_jobs_end_with_leftovers_kill(runner: Runner) -> None:
    m = marker()
    command = f"sleep {m} & {EXECED} setsid sleep {m} & {EXECED} echo started"
    run = await runner.start(spec(command, leftovers="kill"), WHO)
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "ok"
    assert sorted(p["command"] for p in run.leftovers) == [f"sleep {m}", f"sleep {m}"]
    assert all(p["killed"] for p in run.leftovers)
    assert wait_until_gone(m) == []


@pytest.mark.parametrize("how", ["setsid", "double-fork"])
async def test_escapees_of_a_killed_run_are_ended(runner: Runner, how: str, tmp_path: Path) -> None:
    m, ready = marker(), tmp_path / "ready"
    daemon = f"sh -c 'touch {ready}; exec sleep {m}'"
    escape = f"setsid {daemon} &" if how == "setsid" else f'(sh -c "{daemon} &" &);'
    run = await runner.start(spec(f"{escape} sleep {m}", timeout=30), WHO)
    for _ in range(200):  # bounded: until the escapee has started
        if ready.exists():
            break
        await asyncio.sleep(0.02)
    run.kill()
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "killed"
    assert wait_until_gone(m) == []


async def test_pipeline_holding_pipes_does_not_hang(runner: Runner) -> None:
    m = marker()
    await timed_out(runner, f"{up_then(f'sleep {m}')} | cat", 1, m)
    assert wait_until_gone(m) == []


async def test_process_that_leaves_its_group_does_not_hang_the_run(runner: Runner) -> None:
    m = marker()
    # setsid puts the sleeper in a new session: out of our group's reach, holding stdout.
    run = await runner.start(spec(f"setsid sleep {m} & echo bye"), WHO)
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "ok"
    for pid in processes_with(m):
        os.kill(pid, 9)


async def test_output_is_bounded_head_and_tail(runner: Runner) -> None:
    run = await runner.start(spec("seq 1 100000"), WHO)
    await run.done.wait()
    text = run.stdout.text()
    assert text.startswith("1\n2\n3\n")
    assert text.endswith("99999\n100000\n")
    assert "bytes dropped" in text
    total = len("\n".join(str(i) for i in range(1, 100001))) + 1
    assert run.stdout.dropped == total - 4096
    row = runner.runlog.get(run.id)
    assert row is not None and row.stdout_dropped == run.stdout.dropped


async def test_non_utf8_output_is_kept_readable(runner: Runner) -> None:
    run = await runner.start(spec(r"printf 'caf\351 \377\n'"), WHO)
    await run.done.wait()
    assert run.stdout.text() == "caf\ufffd \ufffd\n"


async def test_stdin_is_closed(runner: Runner) -> None:
    run = await runner.start(spec("cat; echo read-done", timeout=5), WHO)
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.state == "ok"
    assert run.stdout.text() == "read-done\n"


async def test_concurrency_one_refuses_a_second_run(runner: Runner, gate: Path) -> None:
    s = spec(waits_for(gate), queue=False)
    first = await runner.start(s, WHO)
    with pytest.raises(Conflict, match=f"run {first.id}"):
        await runner.start(s, WHO)
    gate.touch()
    await first.done.wait()
    second = await runner.start(s, WHO)
    await second.done.wait()
    assert second.state == "ok"


async def test_a_start_that_cannot_be_recorded_passes_its_turn_on(runner: Runner, gate: Path) -> None:
    s = spec(waits_for(gate), queue=True)
    first = await runner.start(s, WHO)
    runner.runlog.start("custom", "a", "A", WHO, "taken")
    second = asyncio.create_task(runner.start(s, WHO, "taken"))  # will fail to record
    third = asyncio.create_task(runner.start(s, WHO))
    await until(lambda: runner.slots.waiting == 2)  # both wait behind the first, in this order
    gate.touch()
    with pytest.raises(DuplicateKey):
        await asyncio.wait_for(second, 10)
    run = await asyncio.wait_for(third, 10)
    await asyncio.wait_for(run.done.wait(), 10)
    assert first.done.is_set() and run.state == "ok"


async def test_stop_answers_every_waiter_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "close.db")
    r = Runner(store.runs, default_timeout=30, kill_grace=5, output_limit=4096)
    s = spec(f"sleep {marker()}", queue=True)
    run = await r.start(s, WHO)
    waiters = [asyncio.create_task(r.start(s, WHO)) for _ in range(4)]
    await asyncio.sleep(0)
    await asyncio.wait_for(r.close(grace=0.5), 5)
    for waiter in waiters:
        with pytest.raises(Stopping):
            await waiter
    assert run.state == "interrupted"
    assert len(store.runs.list()) == 1
    store.close()


async def test_a_waiter_that_leaves_never_runs(runner: Runner, gate: Path) -> None:
    s = spec(waits_for(gate), queue=True)
    first = await runner.start(s, WHO)
    leaving = asyncio.create_task(runner.start(s, WHO))
    staying = asyncio.create_task(runner.start(s, WHO))
    await until(lambda: runner.slots.waiting == 2)
    leaving.cancel()
    await asyncio.sleep(0)
    gate.touch()
    run = await asyncio.wait_for(staying, 10)
    await asyncio.wait_for(run.done.wait(), 10)
    assert first.state == "ok" and run.state == "ok"
    assert len(runner.runlog.list()) == 2


async def test_an_end_that_cannot_be_written_is_kept_and_written_later(tmp_path: Path) -> None:
    path, gate = tmp_path / "ends.db", tmp_path / "gate"
    store = Store(path)
    r = Runner(store.runs, default_timeout=30, kill_grace=0.5, output_limit=4096, retry_ends=0.05)
    run = await r.start(spec(f"while [ ! -e {gate} ]; do sleep 0.01; done; echo done"), WHO)
    os.link(path, tmp_path / "backup.db")
    path.unlink()  # the database is gone while the command runs
    gate.touch()
    await asyncio.wait_for(run.done.wait(), 10)
    assert r.known(run.id) is run and run.id in r.unwritten
    assert store.runs.get(run.id).state == "running"  # type: ignore[union-attr]
    os.link(tmp_path / "backup.db", path)  # back: the end is written without any new run
    for _ in range(100):
        if not r.unwritten:
            break
        await asyncio.sleep(0.05)
    row = store.runs.get(run.id)
    assert row is not None and (row.state, row.stdout) == ("ok", "done\n")
    await r.close()
    store.close()


async def test_a_graceful_stop_writes_every_kept_end(tmp_path: Path) -> None:
    path, gate = tmp_path / "ends.db", tmp_path / "gate"
    store = Store(path)
    r = Runner(store.runs, default_timeout=30, kill_grace=0.5, output_limit=4096)
    run = await r.start(spec(f"while [ ! -e {gate} ]; do sleep 0.01; done; echo done"), WHO)
    os.link(path, tmp_path / "backup.db")
    path.unlink()
    gate.touch()
    await asyncio.wait_for(run.done.wait(), 10)
    assert run.id in r.unwritten
    os.link(tmp_path / "backup.db", path)
    await asyncio.wait_for(r.close(), 10)  # before the retry comes round
    row = store.runs.get(run.id)
    assert row is not None and (row.state, row.stdout) == ("ok", "done\n")
    store.close()


async def test_queue_waits_its_turn(runner: Runner, gate: Path) -> None:
    s = spec(f"echo start; {waits_for(gate)}; echo end", queue=True)
    starts = [asyncio.create_task(runner.start(s, WHO)) for _ in range(4)]
    await until(lambda: len(runner.running) == 1)
    assert sum(task.done() for task in starts) == 1  # the other three wait for their turn
    gate.touch()
    runs = await asyncio.gather(*starts)
    await asyncio.gather(*(r.done.wait() for r in runs))
    assert all(r.state == "ok" for r in runs)
    rows = sorted((runner.runlog.get(r.id) for r in runs), key=lambda row: row.started)  # type: ignore[union-attr]
    for earlier, later in itertools.pairwise(rows):
        assert earlier.ended <= later.started  # type: ignore[operator]


async def test_concurrency_two(runner: Runner, gate: Path) -> None:
    s = spec(waits_for(gate), concurrency=2, queue=False)
    a, b = await runner.start(s, WHO), await runner.start(s, WHO)
    with pytest.raises(Conflict):
        await runner.start(s, WHO)
    gate.touch()
    await asyncio.gather(a.done.wait(), b.done.wait())


async def test_divider_and_missing_command(runner: Runner) -> None:
    with pytest.raises(BadRequest):
        await runner.start(CommandSpec("custom", "divider", ""), WHO)
    with pytest.raises(SysmenuError) as info:
        await runner.start(spec(None), WHO)
    assert info.value.status_code == 500


async def test_close_interrupts_running_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "close.db")
    r = Runner(store.runs, default_timeout=30, kill_grace=5, output_limit=4096, pipe_grace=0.1)
    m = marker()
    run = await r.start(spec(f"sleep {m} | cat"), WHO)
    await until(lambda: len(processes_with(m)) >= 2)  # the shell and its sleep
    await asyncio.wait_for(r.close(), 10)
    assert run.state == "interrupted"
    assert store.runs.get(run.id).state == "interrupted"  # type: ignore[union-attr]
    assert wait_until_gone(m) == []
    with pytest.raises(Stopping):
        await r.start(spec("true"), WHO)
    store.close()


async def test_recover_marks_left_runs_interrupted(tmp_path: Path) -> None:
    store = Store(tmp_path / "recover.db")
    left = store.runs.start("custom", "a", "A", Who("x", "apikey", "127.0.0.1"))
    r = Runner(store.runs, default_timeout=30, kill_grace=1, output_limit=4096)
    assert await r.recover() == [left]
    row = store.runs.get(left)
    assert row is not None and row.state == "interrupted" and row.ended is not None
    store.close()


async def test_follow_gets_history_then_live(runner: Runner, gate: Path) -> None:
    run = await runner.start(spec(f"echo one; {waits_for(gate)}; echo two"), WHO)
    await until(lambda: run.stdout.total > 0)
    history, queue = run.subscribe()
    assert history == [("stdout", "one\n")]
    assert queue is not None
    gate.touch()
    assert await asyncio.wait_for(queue.get(), 5) == ("stdout", "two\n")
    assert await asyncio.wait_for(queue.get(), 5) is None
