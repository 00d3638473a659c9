"""Self-tests of the CUDA emulator (csrc/emu): every check fires, and CUDA semantics hold.

The kernels are csrc/emu/tests/selftest_*.cu, run through ``torch.ops.dinotools_emu.selftest``.
Expected values are computed here from the CUDA programming guide's wording, not from the emulator.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from cuda_emu import AVAILABLE, SCHEDULES, SKIP_REASON, use_schedule

pytestmark = pytest.mark.skipif(not AVAILABLE, reason=SKIP_REASON)
KERNELS = Path(__file__).resolve().parents[1] / "csrc" / "emu" / "tests"
FULL = 0xFFFFFFFF
# cudaError_t values (driver_types.h)
SUCCESS, INVALID_VALUE, INVALID_CONFIGURATION, OUT_OF_RESOURCES = 0, 1, 9, 701


def site(marker: str) -> str:
    """'tests/selftest_sync.cu:15': where the line marked `// @marker` is, as errors print it."""
    for path in sorted(KERNELS.glob("*.cu")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.rstrip().endswith(f"// @{marker}"):
                return f"tests/{path.name}:{number}"
    raise LookupError(marker)


def run(name: str, arg: int = 0, values=()):
    """(cudaError_t of the test's launches, results as float64 numpy)."""
    out = torch.ops.dinotools_emu.selftest(name, torch.tensor(values, dtype=torch.float64), arg).numpy()
    return int(out[0]), out[1:]


@pytest.fixture(params=SCHEDULES)
def schedule(request):
    use_schedule(request.param, request.node.nodeid)
    return request.param


@pytest.fixture
def threads_mode():
    """One OS thread per CUDA thread (the sanitizer mode) for the test, fibers again afterwards."""
    torch.ops.dinotools_emu.set_mode("threads")
    yield
    torch.ops.dinotools_emu.set_mode("fibers")


# --- checks that must fire ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["fibers", "threads"])
@pytest.mark.parametrize("name,expected", [
    ("divergent_barrier", [r"divergent block barrier", "@barrier_a", "@barrier_b"]),
    ("exit_before_barrier", [r"deadlock", r"exited", "@barrier_after_exit"]),
    ("divergent_shuffle", [r"divergent warp collective", "@shfl_a", "@shfl_b"]),
    ("mask_disagrees", [r"divergent warp collective", r"0x0000ffff", "@mask_site"]),
    ("warp_meets_barrier", [r"deadlock", "@split_barrier", "@split_warp"]),
])
def test_divergence_and_deadlock_abort_naming_file_and_line(name, expected, mode, schedule):
    torch.ops.dinotools_emu.set_mode(mode)
    try:
        with pytest.raises(RuntimeError) as info:
            run(name)
    finally:
        torch.ops.dinotools_emu.set_mode("fibers")
    message = str(info.value)
    assert message.startswith("cuda-emu: ")
    for want in expected:
        assert (site(want[1:]) if want.startswith("@") else want) in message, message


@pytest.mark.parametrize("name,arg,expected", [
    ("static_overflow", 0, r"overflow: bytes 0\.\.3 past the end of DT_SHARED\(float, tile, \[32\]\) \(@overflow_tile"),
    ("static_overflow", 5, r"overflow: bytes 20\.\.23 past the end of DT_SHARED\(float, tile, \[32\]\)"),
    ("dynamic_overflow", 10, r"overflow: bytes 0\.\.3 past the end of DT_DYN_SHARED\(int, buf\) \(@overflow_dyn, 40 bytes"),
    ("underflow", 1, r"underflow: bytes 1\.\.4 before the start of DT_SHARED\(float, second, \[16\]\) \(@underflow_second"),
])
def test_shared_memory_overflow_into_a_guard_zone_names_the_allocation(name, arg, expected, schedule):
    with pytest.raises(RuntimeError) as info:
        run(name, arg)
    pattern = re.sub(r"@(\w+)", lambda m: re.escape(site(m.group(1))), expected)
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.fixture
def global_guards():
    torch.ops.dinotools_emu.set_global_guards(True)
    yield
    torch.ops.dinotools_emu.set_global_guards(False)


@pytest.mark.parametrize("arg,expected", [
    (0, r"global-memory overflow: bytes 0\.\.7 past the end of a 65544-byte global buffer were written by global_write"),
    (-8194, r"global-memory underflow: bytes 1\.\.8 before the start of a 65544-byte global buffer"),
])
def test_global_memory_overflow_is_caught_after_the_launch(arg, expected, global_guards):
    # selftest's output buffer: 1 + 8192 doubles; the kernel writes out[8192 + arg] of out = buffer + 1
    with pytest.raises(RuntimeError, match=expected):
        run("global_write", arg)
    assert run("global_write", -1)[0] == SUCCESS  # the last element is in bounds; guards were repaired
    assert torch.isnan(torch.empty(16)).all()  # fresh global memory reads as NaN while guarded


def test_static_shared_memory_over_48k_is_rejected_like_ptxas():
    with pytest.raises(RuntimeError, match=re.escape(site("huge_tile")) + r".*at most 49152"):
        run("static_over_48k")


def test_stack_overflow_of_an_emulated_thread_is_an_error_not_a_crash():
    err, _ = run("recursion", 64)  # 64 KiB deep: fits in the 256 KiB fiber stack
    assert err == SUCCESS
    with pytest.raises(RuntimeError, match=r"stack overflow: emulated thread \d+ used more than 256 KiB"):
        run("recursion", 100_000)
    err, _ = run("recursion", 64)  # and the next launch runs normally
    assert err == SUCCESS


def test_unwritten_shared_memory_reads_nan_and_is_reset_for_every_block(schedule):
    err, out = run("poison")
    assert err == SUCCESS
    for block in (0, 1):
        tile, dyn = out[block * 128:block * 128 + 64], out[block * 128 + 64:block * 128 + 128]
        np.testing.assert_array_equal(tile[0::2], np.arange(0, 64, 2))  # written by even threads
        assert np.isnan(tile[1::2]).all()  # never written: poison
    assert (out[64:128] == 7).all()  # block 0 wrote its dynamic shared memory...
    assert np.isnan(out[128 + 64:256]).all()  # ...block 1 did not, and sees poison, not block 0's data


@pytest.mark.parametrize("schedule_name,reads_poison", [("forward", range(0, 63)), ("reverse", [63])])
def test_a_missing_barrier_reads_poison(schedule_name, reads_poison, request):
    # Fibers run to the next synchronisation point: without the barrier, a thread reads its
    # neighbour's entry before the neighbour has run (forward: every thread but the last).
    use_schedule(schedule_name, request.node.nodeid)
    err, out = run("missing_barrier")
    assert err == SUCCESS
    unwritten = [t for t in range(64) if math.isnan(out[t])]
    assert unwritten == list(reads_poison)


def test_launch_limits_report_the_devices_error_codes():
    err, out = run("limits")
    assert err == SUCCESS
    expected = [
        SUCCESS, INVALID_VALUE,           # 48 KiB dynamic is the default limit; 4 bytes more is refused
        SUCCESS, SUCCESS, INVALID_VALUE,  # opt in to 100000 bytes: launches up to it, not past it
        232448, INVALID_VALUE,            # sm_90's opt-in maximum; asking past it fails
        SUCCESS, INVALID_VALUE,           # 8 KiB static + 40 KiB dynamic fits; 4 bytes more does not
        INVALID_VALUE, 0,                 # same, static size not yet known: stops at the declaration
        INVALID_CONFIGURATION, INVALID_CONFIGURATION, INVALID_CONFIGURATION,  # 1025 threads, z=65, 2048
        INVALID_CONFIGURATION, INVALID_CONFIGURATION, INVALID_CONFIGURATION,  # grid.y, grid.z 65536; 0
        SUCCESS,                          # grid.y = 65535
        SUCCESS, OUT_OF_RESOURCES,        # __launch_bounds__(128): 128 threads run, 129 do not
    ]
    np.testing.assert_array_equal(out[:len(expected)], expected)


def test_device_choice_sets_the_opt_in_limit():
    torch.ops.dinotools_emu.set_device("sm_80")
    try:
        _, out = run("limits")
        assert out[5] == 166912  # A100: 163 KiB
    finally:
        torch.ops.dinotools_emu.set_device("sm_90")
    with pytest.raises(ValueError, match="sm_80, sm_86, sm_89, sm_90"):
        torch.ops.dinotools_emu.set_device("sm_99")
    with pytest.raises(ValueError, match="'forward', 'reverse' or 'random'"):
        torch.ops.dinotools_emu.set_schedule("sideways", 0)


# --- CUDA semantics -------------------------------------------------------------------------------

def _shuffle_reference(vals, width, kind, arg):
    """One warp's results from the programming guide's description of __shfl*_sync."""
    out = []
    for lane in range(32):
        base, src = lane - lane % width, lane
        if kind == "idx":
            src = base + arg(lane) % width
        elif kind == "up":
            src = lane - arg if lane - arg >= base else lane  # below the segment: unchanged
        elif kind == "down":
            src = lane + arg if lane + arg < base + width else lane  # past the segment: unchanged
        elif kind == "xor":
            src = lane ^ arg if (lane ^ arg) < base + width else lane  # later segments: own value
        out.append(vals[src])
    return out


@pytest.mark.parametrize("threads", [64, 40])  # 40: the second warp has 8 lanes, the rest do not exist
def test_shuffles_follow_the_programming_guide(threads, schedule):
    err, out = run("shuffles", threads)
    assert err == SUCCESS
    for warp in range(2):
        lanes = min(32, threads - 32 * warp)
        fvals = [lane * 10 + 0.5 if lane < lanes else math.nan for lane in range(32)]
        ivals = [lane * 3 if lane < lanes else -1 for lane in range(32)]  # missing lane: poison bytes
        got = out[warp * 640:(warp + 1) * 640].reshape(20, 32)[:, :lanes]
        case = 0
        for width in (32, 16, 8, 4):
            for kind, arg, vals in (("idx", lambda lane: (lane * 7 + 3) % 37 - 2, fvals), ("up", 3, fvals),
                                    ("down", 5, fvals), ("xor", 6, fvals), ("xor", 20, ivals)):
                expected = _shuffle_reference(vals, width, kind, arg)[:lanes]
                np.testing.assert_array_equal(got[case], expected, err_msg=f"width {width} {kind}")
                case += 1


def test_partial_mask_collectives_see_only_the_named_lanes(schedule):
    err, out = run("shuffles_partial_mask")
    assert err == SUCCESS
    vals = [lane * 10 + 0.5 for lane in range(16)] + [math.nan] * 16  # lanes 16-31 do not take part
    got = out[:3 * 32].reshape(3, 32)[:, :16]
    np.testing.assert_array_equal(got[0], [vals[lane ^ (16 + (lane & 1))] for lane in range(16)])
    np.testing.assert_array_equal(got[1], [vals[lane + 4] for lane in range(16)])
    assert (got[2] == sum(1 << lane for lane in range(16) if lane % 3 == 0)).all()


def test_votes_and_counting_barriers(schedule):
    err, out = run("votes")
    assert err == SUCCESS
    got = out[:7 * 64].reshape(7, 64)
    assert (got[0] == sum(1 << lane for lane in range(32) if lane % 3 == 0)).all()
    assert (got[1] == 1).all() and (got[2] == 0).all() and (got[3] == 1).all()
    assert (got[4] == len(range(0, 64, 5))).all()
    assert (got[5] == 1).all() and (got[6] == 1).all()


def test_warp_gather_gives_every_lane_all_values(schedule):
    err, out = run("gather", 64)
    assert err == SUCCESS
    pairs = out[:64 * 32 * 2].reshape(64, 32, 2)
    np.testing.assert_array_equal(pairs[..., 0], np.tile(np.arange(32) * 2.5, (64, 1)))
    np.testing.assert_array_equal(pairs[..., 1], np.tile(np.arange(32) * 3, (64, 1)))
    np.testing.assert_array_equal(out[64 * 32 * 2:64 * 32 * 2 + 64], np.arange(64) % 32)  # dt_emu_lane()
    with pytest.raises(RuntimeError, match="needs all 32 lanes"):
        run("gather", 40)


def test_schedules_order_threads_and_blocks_differently():
    n = 3 * 64  # order: 3 blocks x 64 threads; tickets taken in two phases around a __syncthreads

    def tickets(schedule, seed):
        torch.ops.dinotools_emu.set_schedule(schedule, seed)
        err, out = run("order")
        assert err == SUCCESS
        return out[:2 * n].reshape(2, 3, 64)

    fwd, rev = tickets("forward", 0), tickets("reverse", 0)
    block, thread = np.arange(3)[:, None], np.arange(64)[None, :]
    # forward: block 0 first, thread 0 first; a block finishes both phases before the next starts
    np.testing.assert_array_equal(fwd[0], block * 128 + thread)
    np.testing.assert_array_equal(fwd[1], fwd[0] + 64)
    # reverse: the last block first, its last thread first
    np.testing.assert_array_equal(rev[0], (2 - block) * 128 + 63 - thread)
    np.testing.assert_array_equal(rev[1], rev[0] + 64)
    first, again, other = tickets("random", 7), tickets("random", 7), tickets("random", 8)
    np.testing.assert_array_equal(first, again)  # a seed reproduces its schedule
    assert not np.array_equal(first, other)
    for t in (first, other):
        assert sorted(t.ravel()) == list(range(2 * n))  # every thread ran both phases once
        assert (t[1].min(axis=1) > t[0].max(axis=1)).all()  # the barrier holds in every block
        assert not np.array_equal(t[0] % 64, np.sort(t[0] % 64, axis=1))  # threads not in forward order
        assert not np.array_equal(t[0] % 64, np.sort(t[0] % 64, axis=1)[:, ::-1])  # nor in reverse order
    block_orders = [tuple(np.argsort(t[0].min(axis=1))) for t in (first, other)]
    assert block_orders != [(0, 1, 2), (0, 1, 2)]  # blocks are shuffled too


def _floats():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 65504, 65519.996, 65520, -65520, 2**-24, 2**-25,
                        2**-25 * 1.0000001, 3 * 2**-26, 2**-14, 2**-14 - 2**-25, 1 + 2**-11, 1 + 3 * 2**-11,
                        1 + 2**-8, 1 + 3 * 2**-8, 3.4e38, 1e-45, 1.5, -2.75], dtype=np.float32)
    return np.concatenate([x[~np.isnan(x)], special, np.float32(1) + np.arange(-2048, 2048, dtype=np.float32) * 2**-13])


def test_float_to_half_and_bfloat16_round_to_nearest_even_like_torch():
    x = _floats()
    err, out = run("convert", 0, x.astype(np.float64))
    assert err == SUCCESS
    got = out[:2 * len(x)].reshape(-1, 2).astype(np.int64)
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(got[:, 0], t.half().view(torch.int16).numpy().astype(np.int64) & 0xFFFF)
    np.testing.assert_array_equal(got[:, 1], t.bfloat16().view(torch.int16).numpy().astype(np.int64) & 0xFFFF)
    _, nan = run("convert", 0, [math.nan, -math.nan])
    assert list(nan[:4]) == [0x7FFF] * 4  # CUDA's canonical NaN


@pytest.mark.parametrize("mode,dtype", [(1, torch.float16), (2, torch.bfloat16)])
def test_every_16_bit_pattern_converts_to_the_same_float_as_torch(mode, dtype):
    bits = np.arange(65536, dtype=np.int64)
    err, out = run("convert", mode, bits.astype(np.float64))
    assert err == SUCCESS
    expected = torch.from_numpy(bits.astype(np.uint16).view(np.int16)).view(dtype).double().numpy()
    np.testing.assert_array_equal(out[:65536], expected)  # NaNs compare equal in assert_array_equal


# --- execution modes --------------------------------------------------------------------------------

def test_threads_mode_runs_collectives_and_the_operator(threads_mode):
    err, out = run("votes")
    assert err == SUCCESS and (out[4 * 64:5 * 64] == 13).all()
    err, out = run("shuffles", 64)
    assert err == SUCCESS and out[0] == _shuffle_reference([lane * 10 + 0.5 for lane in range(32)], 32, "idx",
                                                           lambda lane: (lane * 7 + 3) % 37 - 2)[0]
    cur, ctx = torch.randn(5, 6, 8), torch.randn(2, 5, 6, 8)
    p = torch.softmax(torch.randn(2, 5, 6, 3), -1)
    before = torch.ops.dinotools_emu.launches()
    out = torch.ops.dinotools_emu.topk_propagate(cur, ctx, p, 2.0, "circle", 4, 0.3)
    assert torch.ops.dinotools_emu.launches() == before + 1  # the fused kernel really ran
    from dinotools.ops.propagators import DensePropagator

    expected = DensePropagator()(cur, ctx, p, size=2, shape="circle", topk=4, temperature=0.3)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
