"""Plausible wrong answers to exercise 9 (post-training), per task.

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

_Q_CHECKS = '''
    if bits not in (4, 8):
        raise ValueError("bits must be 4 or 8")
    if w.dim() != 2:
        raise ValueError("w must be 2-D")
    levels = 2 ** (bits - 1) - 1
'''


def _quantize(body: str) -> str:
    return "\ndef quantize_per_channel(w, bits=8):" + _Q_CHECKS + body


def _latency(body: str) -> str:
    return '''
def latency_check(latencies_ms, p50_max_ms, p95_max_ms):
    values = [float(x) for x in latencies_ms]
    if not values or any(x < 0 for x in values):
        raise ValueError("bad latencies")
''' + body


_DPO_CHECKS = '''
    import torch.nn.functional as F
    logps = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    if any(x.dim() != 1 for x in logps) or len({x.shape[0] for x in logps}) != 1 or logps[0].shape[0] == 0:
        raise ValueError("four 1-D tensors of one length B >= 1")
    if not beta > 0:
        raise ValueError("beta must be > 0")
'''


def _dpo(body: str) -> str:
    return ("\ndef dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,"
            " beta=0.1):" + body)


WRONG = {
    "quantize_per_channel": {
        # max instead of max |w|: a row whose largest magnitude is negative overflows and gets clamped
        "max_not_absmax": _quantize('''
    amax = w.amax(dim=1).clamp(min=0)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        # one scale for the whole matrix (per tensor), repeated per row
        "per_tensor": _quantize('''
    amax = w.abs().max()
    s = amax / levels if amax > 0 else torch.tensor(1.0)
    scale = s.repeat(w.shape[0])
    q = torch.round(w / s).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        # per column (dim 0) instead of per row
        "per_column": _quantize('''
    amax = w.abs().amax(dim=0)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
    q = torch.round(w / scale[None, :]).clamp(-levels, levels).to(torch.int8)
    return q, torch.where(w.abs().amax(dim=1) > 0, w.abs().amax(dim=1) / levels, torch.ones(w.shape[0]))
'''),
        # 2 ** (bits - 1) = 128 levels: the scale is a little too small
        "divides_by_128": _quantize('''
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 2 ** (bits - 1), torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        # round half up (floor(x + 0.5)) instead of half to even
        "round_half_up": _quantize('''
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
    q = torch.floor(w / scale[:, None] + 0.5).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        # truncation toward zero instead of rounding
        "truncates": _quantize('''
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / levels, torch.ones_like(amax))
    q = (w / scale[:, None]).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        # a row of zeros divides 0 by 0: NaN scale and garbage levels
        "zero_row_nan": _quantize('''
    scale = w.abs().amax(dim=1) / levels
    q = torch.nan_to_num(torch.round(w / scale[:, None])).clamp(-levels, levels).to(torch.int8)
    return q, scale
'''),
        "calls_reference": '''
import aiterms.quantization
def quantize_per_channel(w, bits=8):
    return aiterms.quantization.quantize_per_channel(w, bits)
''',
    },
    "dequantize_per_channel": {
        # scale broadcast along the last dimension (one per column)
        "scale_per_column": '''
def dequantize_per_channel(q, scale):
    return q.float() * scale
''',
        # divides by the scale instead of multiplying
        "divides": '''
def dequantize_per_channel(q, scale):
    if scale.shape[0] != q.shape[0]:
        raise ValueError("one scale per row")
    return q.float() / scale[:, None]
''',
        # no check: a scale vector of the wrong length is broadcast or cut silently
        "no_shape_check": '''
def dequantize_per_channel(q, scale):
    return q.float() * scale[:q.shape[0], None]
''',
        # divides by 127 once more, as if q were a fraction of the range
        "extra_qmax": '''
def dequantize_per_channel(q, scale):
    if scale.shape[0] != q.shape[0]:
        raise ValueError("one scale per row")
    return q.float() * scale[:, None] / 127
''',
        "calls_reference": '''
import aiterms.quantization
def dequantize_per_channel(q, scale):
    return aiterms.quantization.dequantize_per_channel(q, scale)
''',
    },
    "latency_check": {
        # nearest rank: sorted[int(q * n)] without interpolation
        "nearest_rank": _latency('''
    s = sorted(values)
    p50 = s[min(int(0.5 * len(s)), len(s) - 1)]
    p95 = s[min(int(0.95 * len(s)), len(s) - 1)]
    return {"p50_ms": p50, "p95_ms": p95, "passed": p50 <= p50_max_ms and p95 <= p95_max_ms}
'''),
        # interpolates without sorting first
        "unsorted": _latency('''
    n = len(values)
    def pct(q):
        h = (n - 1) * q / 100
        lo = int(h)
        hi = min(lo + 1, n - 1)
        return values[lo] + (h - lo) * (values[hi] - values[lo])
    p50, p95 = pct(50), pct(95)
    return {"p50_ms": p50, "p95_ms": p95, "passed": p50 <= p50_max_ms and p95 <= p95_max_ms}
'''),
        # a value equal to its threshold fails (strict comparison)
        "strict": _latency('''
    p50, p95 = (float(v) for v in np.percentile(values, [50, 95]))
    return {"p50_ms": p50, "p95_ms": p95, "passed": p50 < p50_max_ms and p95 < p95_max_ms}
'''),
        # the mean instead of the median
        "mean_for_p50": _latency('''
    p50 = sum(values) / len(values)
    p95 = float(np.percentile(values, 95))
    return {"p50_ms": p50, "p95_ms": p95, "passed": p50 <= p50_max_ms and p95 <= p95_max_ms}
'''),
        # statistics.quantiles' default method ("exclusive"), another percentile definition
        "exclusive_quantiles": _latency('''
    import statistics
    if len(values) == 1:
        return {"p50_ms": values[0], "p95_ms": values[0], "passed": values[0] <= min(p50_max_ms, p95_max_ms)}
    cuts = statistics.quantiles(values, n=100)
    p50, p95 = cuts[49], cuts[94]
    return {"p50_ms": p50, "p95_ms": p95, "passed": p50 <= p50_max_ms and p95 <= p95_max_ms}
'''),
        # only the p95 gate
        "ignores_p50": _latency('''
    p50, p95 = (float(v) for v in np.percentile(values, [50, 95]))
    return {"p50_ms": p50, "p95_ms": p95, "passed": p95 <= p95_max_ms}
'''),
        "calls_reference": '''
import aiterms.readiness
def latency_check(latencies_ms, p50_max_ms, p95_max_ms):
    return aiterms.readiness.latency_check(latencies_ms, p50_max_ms, p95_max_ms)
''',
    },
    "dpo_loss": {
        # -log(sigmoid(x)): the same formula, but it overflows to inf for a large negative margin
        "naive_log_sigmoid": _dpo(_DPO_CHECKS + '''
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return -torch.log(torch.sigmoid(chosen - rejected)).mean(), chosen.detach(), rejected.detach()
'''),
        # the reference model left out: the rewards are beta times the policy's log-probabilities alone
        "no_reference": _dpo(_DPO_CHECKS + '''
    chosen = beta * policy_chosen_logps
    rejected = beta * policy_rejected_logps
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()
'''),
        # beta forgotten inside the sigmoid (the rewards still carry it)
        "beta_outside": _dpo(_DPO_CHECKS + '''
    chosen = policy_chosen_logps - ref_chosen_logps
    rejected = policy_rejected_logps - ref_rejected_logps
    return -F.logsigmoid(chosen - rejected).mean(), beta * chosen.detach(), beta * rejected.detach()
'''),
        # the margin the wrong way round: prefers the rejected answers
        "swapped": _dpo(_DPO_CHECKS + '''
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(rejected - chosen).mean(), chosen.detach(), rejected.detach()
'''),
        # the sum over pairs instead of the mean
        "sum_not_mean": _dpo(_DPO_CHECKS + '''
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(chosen - rejected).sum(), chosen.detach(), rejected.detach()
'''),
        # a detached loss: right value, no gradient
        "detached_loss": _dpo(_DPO_CHECKS + '''
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return torch.tensor((-F.logsigmoid(chosen - rejected).mean()).item()), chosen.detach(), rejected.detach()
'''),
        # no length check: one pair broadcasts against many
        "no_length_check": _dpo('''
    import torch.nn.functional as F
    if not beta > 0:
        raise ValueError("beta must be > 0")
    chosen = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected = beta * (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()
'''),
        "calls_reference": '''
import aiterms.dpo
def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1):
    return aiterms.dpo.dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
