"""The one exception the image pipeline raises on purpose, carrying a wire reject code."""

from __future__ import annotations

from switch.contract.messages import Codes
from switch.errors import SwitchError

INVALID = Codes.IMAGE_INVALID
TOO_LARGE = Codes.IMAGE_TOO_LARGE


class ImageRejected(SwitchError):
    """The image cannot be stored: `code` goes on the wire, `text` to the operator.

    Picklable as-is, so a rejection raised in a pool worker arrives intact.
    """

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[str, str]]:
        return (type(self), (self.code, self.text))


def invalid(text: str) -> ImageRejected:
    return ImageRejected(INVALID, f"IMAGE INVALID: {text}")


def too_large(text: str) -> ImageRejected:
    return ImageRejected(TOO_LARGE, f"IMAGE TOO LARGE: {text}")
