"""Plausible wrong answers to exercise 4 (supervised fine-tuning), per task (grade_id of the answer cell -> name ->
source).

Each source replaces the learner's answer cell; the other cells keep the reference solution. Autograding must give
every one of them less than full marks on its task (tests/test_exercises.py), whatever the grading salt
(tests/test_checks.py).
"""

# The correct start of encode_pair, shared by most variants below.
_PARTS = '''
    prompt_part = [TOKENIZER.bos_id] + TOKENIZER.encode(prompt) + [TOKENIZER.sep_id]
    response_part = TOKENIZER.encode(response) + [TOKENIZER.eos_id]
    sequence = prompt_part + response_part
    ids = sequence[:-1]
'''
_CHECK = '''
    if len(ids) > max_len:
        raise ValueError("too long")
'''

WRONG = {
    "encode_pair": {
        "labels_not_shifted": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + _CHECK + '''
    n = len(prompt_part) - 1
    labels = [IGNORE_INDEX] * n + ids[n:]          # the current token, not the next one
    return ids, labels, [0] * n + [1] * (len(ids) - n)
''',
        "eos_not_in_mask": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + _CHECK + '''
    n = len(prompt_part) - 1
    labels = [IGNORE_INDEX] * n + response_part
    return ids, labels, [0] * n + [1] * (len(response_part) - 1) + [0]
''',
        "mask_covers_prompt": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + _CHECK + '''
    return ids, sequence[1:], [1] * len(ids)
''',
        "sep_dropped": '''
def encode_pair(prompt, response, max_len):
    prompt_part = [TOKENIZER.bos_id] + TOKENIZER.encode(prompt)
    response_part = TOKENIZER.encode(response) + [TOKENIZER.eos_id]
    ids = (prompt_part + response_part)[:-1]
    if len(ids) > max_len:
        raise ValueError("too long")
    n = len(prompt_part) - 1
    return ids, [IGNORE_INDEX] * n + response_part, [0] * n + [1] * len(response_part)
''',
        "no_max_len_check": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + '''
    n = len(prompt_part) - 1
    return ids, [IGNORE_INDEX] * n + response_part, [0] * n + [1] * len(response_part)
''',
        "max_len_counts_every_token": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + '''
    if len(sequence) > max_len:                    # L instead of L - 1 input positions
        raise ValueError("too long")
    n = len(prompt_part) - 1
    return ids, [IGNORE_INDEX] * n + response_part, [0] * n + [1] * len(response_part)
''',
        "mask_one_position_late": '''
def encode_pair(prompt, response, max_len):''' + _PARTS + _CHECK + '''
    n = len(prompt_part) - 1
    labels = [IGNORE_INDEX] * n + response_part
    return ids, labels, [0] * len(prompt_part) + [1] * (len(ids) - len(prompt_part))   # where ids are the response
''',
        "calls_reference": '''
from aiterms.tokenizer import encode_pair as _encode_pair
def encode_pair(prompt, response, max_len):
    return _encode_pair(prompt, response, max_len)
''',
    },
    "collate": {
        "labels_padded_with_pad_id": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    T = max(len(ex[0]) for ex in examples)
    ids = torch.tensor([list(i) + [pad_id] * (T - len(i)) for i, _, _ in examples], dtype=torch.long)
    labels = torch.tensor([list(l) + [pad_id] * (T - len(l)) for _, l, _ in examples], dtype=torch.long)
    mask = torch.tensor([list(m) + [0] * (T - len(m)) for _, _, m in examples], dtype=torch.float32)
    return ids, labels, mask
''',
        "mask_padded_with_ones": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    T = max(len(ex[0]) for ex in examples)
    ids = torch.tensor([list(i) + [pad_id] * (T - len(i)) for i, _, _ in examples], dtype=torch.long)
    labels = torch.tensor([list(l) + [IGNORE_INDEX] * (T - len(l)) for _, l, _ in examples], dtype=torch.long)
    mask = torch.tensor([list(m) + [1] * (T - len(m)) for _, _, m in examples], dtype=torch.float32)
    return ids, labels, mask
''',
        "left_padding": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    T = max(len(ex[0]) for ex in examples)
    ids = torch.tensor([[pad_id] * (T - len(i)) + list(i) for i, _, _ in examples], dtype=torch.long)
    labels = torch.tensor([[IGNORE_INDEX] * (T - len(l)) + list(l) for _, l, _ in examples], dtype=torch.long)
    mask = torch.tensor([[0] * (T - len(m)) + list(m) for _, _, m in examples], dtype=torch.float32)
    return ids, labels, mask
''',
        "pad_id_ignored": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    T = max(len(ex[0]) for ex in examples)
    ids = torch.tensor([list(i) + [TOKENIZER.pad_id] * (T - len(i)) for i, _, _ in examples], dtype=torch.long)
    labels = torch.tensor([list(l) + [IGNORE_INDEX] * (T - len(l)) for _, l, _ in examples], dtype=torch.long)
    mask = torch.tensor([list(m) + [0] * (T - len(m)) for _, _, m in examples], dtype=torch.float32)
    return ids, labels, mask
''',
        "ids_padded_with_ignore_index": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    T = max(len(ex[0]) for ex in examples)
    ids = torch.tensor([list(i) + [IGNORE_INDEX] * (T - len(i)) for i, _, _ in examples], dtype=torch.long)
    labels = torch.tensor([list(l) + [IGNORE_INDEX] * (T - len(l)) for _, l, _ in examples], dtype=torch.long)
    mask = torch.tensor([list(m) + [0] * (T - len(m)) for _, _, m in examples], dtype=torch.float32)
    return ids, labels, mask
''',
        "float_ids": '''
def collate(examples, pad_id=TOKENIZER.pad_id):
    B, T = len(examples), max(len(ex[0]) for ex in examples)
    ids, labels, mask = torch.full((B, T), float(pad_id)), torch.full((B, T), float(IGNORE_INDEX)), torch.zeros(B, T)
    for row, (i, l, m) in enumerate(examples):
        ids[row, :len(i)], labels[row, :len(l)], mask[row, :len(m)] = torch.tensor(i), torch.tensor(l), torch.tensor(m)
    return ids, labels, mask
''',
        "calls_reference": '''
import aiterms.tokenizer
def collate(examples, pad_id=TOKENIZER.pad_id):
    return aiterms.tokenizer.collate(examples, pad_id)
''',
    },
    "sft_loss": {
        "no_mask": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits, dim=-1)
    return -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1).mean()
''',
        "ignore_index_instead_of_mask": '''
import torch.nn.functional as F
def sft_loss(logits, labels, mask):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
''',
        "divided_by_all_positions": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / mask.numel()
''',
        "mean_per_example": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return ((nll * mask).sum(dim=1) / mask.sum(dim=1)).mean()
''',
        "sum_instead_of_mean": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum()
''',
        "probabilities_not_log": '''
def sft_loss(logits, labels, mask):
    probs = torch.softmax(logits, dim=-1)
    p = probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(p * mask).sum() / mask.sum()
''',
        "log_of_softmax": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log(torch.softmax(logits, dim=-1))
    nll = -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / mask.sum()
''',
        "shifted_again": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)       # labels are already the next tokens
    nll = -logprobs.gather(-1, labels[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()
''',
        "softmax_over_positions": '''
def sft_loss(logits, labels, mask):
    logprobs = torch.log_softmax(logits, dim=1)
    nll = -logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / mask.sum()
''',
        "calls_reference": '''
from aiterms.sft import sft_loss as _sft_loss
def sft_loss(logits, labels, mask):
    return _sft_loss(logits, labels, mask)
''',
    },
}


def wrong_answers(solution: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (task's function, wrong source), given the solution's answer cells (markers removed)."""
    return {f"{task}-{name}": (task, src) for task, variants in WRONG.items() for name, src in variants.items()}
