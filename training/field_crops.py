"""Digits as the field reader sees them, for the default recipe's last stage.

Training digits are composed into synthetic fields (`training.synthetic_fields`: cheque amounts
and every other variation, boxes, blur, JPEG, rotation) and read back through the serving
segmenter (`recognition.segment_image`), so the model learns on the very crops it is served:
cut out of a scan, lines removed, normalised. A model trained on MNIST alone called one field
digit in forty "not a digit" (docs/training.md, "Fifth run").

Only fields whose segmentation is beyond doubt are kept — every slot has one hypothesis and
there are as many slots as digits — so no model takes part in choosing the crops.
"""

import numpy as np

from recognition import ImageError, segment_image
from training.synthetic_fields import cheque_spec, mixed_spec, render_field

# Cheque amounts (the fields banks send) and the full mix of variations, in this proportion.
CHEQUE_SHARE = 0.7


def field_crops(
    images: np.ndarray, labels: np.ndarray, fields: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs [N, 28, 28, 1] and labels of the digits in `fields` synthetic fields
    composed from `images` (uint8 MNIST digits) and `labels`."""
    rng = np.random.default_rng(seed)
    crops, digits = [], []
    for _ in range(fields):
        spec = cheque_spec(rng) if rng.random() < CHEQUE_SHARE else mixed_spec(rng)
        field = render_field(spec, images, labels, rng)
        try:
            segmentation = segment_image(field.image)
        except ImageError:  # only separators or specks were left: nothing to learn from
            continue
        if any(len(slot) > 1 for slot in segmentation.slots):
            continue
        chosen = [slot[0] for slot in segmentation.slots]
        if segmentation.plain is not None and sum(len(h.crops) for h in chosen) == 1:
            chosen = [segmentation.plain]  # one digit is read from the whole image
        indices = [i for hypothesis in chosen for i in hypothesis.crops]
        if len(indices) != len(field.text):
            continue
        crops.extend(segmentation.crops[i] for i in indices)
        digits.extend(int(d) for d in field.text)
    x = np.asarray(crops, dtype=np.float32).reshape(-1, 28, 28, 1)
    return x, np.asarray(digits, dtype=np.int64)
