"""Writes the PIL golden data of experiments/inputs/image_test.cc.

Run with Debian's Python and Pillow (apt-get install python3-pil; made with Pillow 9.4.0):
    /usr/bin/python3 experiments/inputs/testdata/make_pil_goldens.py experiments/inputs/testdata
Each case saves an input image file and, in pil_golden.safetensors (uint8 tensors),
`<case>.rgb` = transformers' convert_to_rgb of the opened file (alpha composited on white) and
`<case>.resized` = that RGB image after PIL Image.resize((W, H), BILINEAR), W/H per case.
16-bit gray: Pillow would clip it; the expected value is our documented rule (high byte).
"""
import json, os, struct, sys
import numpy as np
from PIL import Image

out = sys.argv[1]
rng = np.random.default_rng(1234)

def to_rgb(im):  # transformers.image_transforms.convert_to_rgb
    if im.mode == "RGB":
        return im
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")

def smooth(h, w, c):
    y, x = np.mgrid[0:h, 0:w]
    base = 127 + 100 * np.sin(x[..., None] / 5.0 + np.arange(c) * 1.3) * np.cos(y[..., None] / 7.0)
    noise = rng.integers(-25, 26, size=(h, w, c))
    return np.clip(base + noise, 0, 255).astype(np.uint8)

tensors = {}
def add(name, arr):
    tensors[name] = np.ascontiguousarray(arr, dtype=np.uint8)

cases = []
# (case, file, PIL image to save, size to resize to)
g = smooth(47, 61, 1)[..., 0]
cases.append(("gray_down", "gray8.png", Image.fromarray(g, "L"), (16, 12)))
cases.append(("gray_up", "gray8.png", None, (100, 83)))
la = np.dstack([smooth(29, 31, 1)[..., 0], rng.integers(0, 256, size=(29, 31)).astype(np.uint8)])
cases.append(("gray_alpha", "gray_alpha8.png", Image.fromarray(la, "LA"), (20, 20)))
rgba = np.dstack([smooth(33, 40, 3), rng.integers(0, 256, size=(33, 40)).astype(np.uint8)])
rgba[:5, :5, 3] = 0
rgba[5:10, :5, 3] = 255
cases.append(("rgba", "rgba8.png", Image.fromarray(rgba, "RGBA"), (24, 24)))
big = smooth(120, 157, 3)
big[20:50, 30:100] = 250
cases.append(("rgb_big_down", "rgb_big.png", Image.fromarray(big, "RGB"), (32, 32)))
cases.append(("rgb_mixed", "rgb_big.png", None, (450, 17)))
cases.append(("rgb_same_width", "rgb_big.png", None, (157, 50)))
cases.append(("rgb_jpeg", "rgb.jpg", Image.fromarray(smooth(64, 80, 3), "RGB"), (32, 32)))
for name, fname, im, size in cases:
    path = os.path.join(out, fname)
    if im is not None:
        if fname.endswith(".jpg"):
            im.save(path, quality=90)
        else:
            im.save(path)
    rgb = to_rgb(Image.open(path))
    if im is not None and (im.mode != "RGB" or fname.endswith(".jpg")):
        add(name + ".rgb", np.asarray(rgb))
    add(name + ".resized", np.asarray(rgb.resize(size, Image.BILINEAR)))

# 16-bit gray PNG: expected = high byte, then as an 8-bit gray image.
g16 = (smooth(37, 45, 1)[..., 0].astype(np.uint16) * 257 + rng.integers(0, 257, size=(37, 45))).astype(np.uint16)
Image.fromarray(g16, "I;16").save(os.path.join(out, "gray16.png"))
back = np.asarray(Image.open(os.path.join(out, "gray16.png")), dtype=np.uint16)
assert (back == g16).all(), "Pillow did not round-trip the 16-bit PNG"
rgb16 = Image.fromarray((g16 >> 8).astype(np.uint8), "L").convert("RGB")
add("gray16.rgb", np.asarray(rgb16))
add("gray16.resized", np.asarray(rgb16.resize((20, 30), Image.BILINEAR)))

header, blob = {}, b""
for k, v in tensors.items():
    b = v.tobytes()
    header[k] = {"dtype": "U8", "shape": list(v.shape), "data_offsets": [len(blob), len(blob) + len(b)]}
    blob += b
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "pil_golden.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + blob)
print({k: v.shape for k, v in tensors.items()})
