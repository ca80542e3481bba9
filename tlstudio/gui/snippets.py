"""The code the Export step shows for using an exported file without tlstudio; the README shows the same.

Text only, no Qt: tests run each snippet as written (tests/faults/test_plain_pytorch_snippet.py,
test_onnx_snippet.py) and check the README holds it. ``{name}`` is the model file's name.
"""

TORCHSCRIPT_SNIPPET = '''\
import torch
from torchvision.io import decode_image


def read_picture(path):
    """A picture as tlstudio reads it: upright (EXIF), RGB, transparent pixels on white, floats in [0, 1]."""
    img = decode_image(path, apply_exif_orientation=True)  # C x H x W, uint8 (uint16 for a 16-bit PNG)
    img = img.float() / (65535.0 if img.dtype == torch.uint16 else 255.0)
    if img.shape[0] in (2, 4):  # an alpha channel: composite onto white, as tlstudio does
        img, alpha = img[:-1], img[-1:]
        img = img * alpha + (1.0 - alpha)
    return img.expand(3, -1, -1)  # grey -> RGB


model = torch.jit.load("{name}")  # only PyTorch needed; a .pt file is a program: load only ones you trust
with torch.no_grad():
    probs = model(read_picture("photo.jpg")[None])[0]  # resizing and normalising happen inside
best = int(probs.argmax())
sure = float(probs[best]) >= model.not_sure_below  # the "not sure" threshold picked in tlstudio (0: always answer)
print(model.class_names[best] if sure else "not sure", f"{{float(probs[best]):.1%}}")
'''


ONNX_SNIPPET = '''\
import json

import numpy as np
import onnxruntime as ort  # pip install onnxruntime pillow: no PyTorch, no tlstudio
from PIL import Image, ImageOps


def read_picture(path):
    """A picture as tlstudio reads it: upright (EXIF), RGB, transparent pixels on white; uint8, 1 x 3 x H x W."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I"):  # 16-bit grey: scaled to 8 bits (Pillow's own conversion clips it)
            im = Image.fromarray(np.clip(np.asarray(im) / 257, 0, 255).round().astype(np.uint8))
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
        return np.ascontiguousarray(np.asarray(im.convert("RGB")).transpose(2, 0, 1)[None])


session = ort.InferenceSession("{name}", providers=["CPUExecutionProvider"])
info = json.loads(session.get_modelmeta().custom_metadata_map["tlstudio.json"])
probs = session.run(None, {{"images": read_picture("photo.jpg")}})[0][0]  # resizing and normalising happen inside
best = int(probs.argmax())
sure = float(probs[best]) >= info["not_sure_below"]  # the "not sure" threshold picked in tlstudio (0: always answer)
print(info["class_names"][best] if sure else "not sure", f"{{float(probs[best]):.1%}}")
'''
