"""The child process that decodes one image into a thumbnail (``content.previews`` runs it).

Run as ``python -I preview_decode.py SOURCE TARGET SIZE MAX_PIXELS FORMAT``; it imports nothing of
the project, only Pillow. Decoding happens here and not in the server's worker so that a hostile or
huge image can only hurt this process: it caps its own address space and CPU time, refuses an image
declaring more than MAX_PIXELS before decoding a pixel (Pillow reads only the header on open), and
the parent kills it when its time is up. Exit status 0: TARGET written; 3: refused (the reason on
stderr, one line); anything else: failed.
"""

import resource
import sys

REFUSED = 3


def limit_resources(max_pixels: int) -> None:
    # Room for the interpreter and Pillow, plus a few bytes per pixel for the decoded frame and
    # its reduced copy; a decoder that needs more fails with MemoryError instead of swapping.
    address_space = 512 * 1024 * 1024 + 8 * max_pixels
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (30, 31))


def stretched(image, size: int):
    """A grey image of 32-bit floats reduced, then its range of values stretched over 0..255 (an
    instrument's 12 or 16 bits would otherwise show black or white)."""
    image.thumbnail((size, size))
    low, high = image.getextrema()
    scale = 255.0 / (high - low) if high > low else 1.0
    return image.point(lambda value: (value - low) * scale).convert("L")


def main(source: str, target: str, size: int, max_pixels: int, fmt: str) -> int:
    limit_resources(max_pixels)
    from PIL import Image, ImageOps

    try:
        Image.MAX_IMAGE_PIXELS = None  # open() reads only the header; the size is checked here
        image = Image.open(source)
        width, height = image.size
        if width * height > max_pixels:
            print(f"the image declares {width} x {height} pixels, more than {max_pixels}", file=sys.stderr)
            return REFUSED
        Image.MAX_IMAGE_PIXELS = max_pixels // 2  # Pillow's own guard (at twice this) for later frames
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
        image.seek(0)  # the first frame of an animation or a multi-page TIFF
        image = ImageOps.exif_transpose(image)
        if image.mode.startswith(("I", "F")):  # 16- and 32-bit greys (scientific TIFFs, PNGs)
            image = stretched(image.convert("F"), size)
        image.thumbnail((size, size), reducing_gap=2.0)
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert(
                "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
            )
        image.save(target, format=fmt, **({"quality": 80, "method": 4} if fmt == "WEBP" else {}))
    except Image.DecompressionBombError as exc:
        print(f"decompression bomb: {exc}", file=sys.stderr)
        return REFUSED
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        print(f"cannot decode the image: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
