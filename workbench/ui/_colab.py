"""Colab renders third-party widgets (every view here) only with its custom widget manager turned on."""

from __future__ import annotations

import sys

_MESSAGE = (
    "The workbench's views need Colab's custom widget manager, which could not be turned on ({why}); "
    "run `from google.colab import output; output.enable_custom_widget_manager()` and re-run the cell."
)


def enable_colab_widgets() -> bool | None:
    """On Colab, turn on the custom widget manager so the views are not blank; elsewhere do nothing.

    Returns True when it was turned on, False when that failed (one line says what to do), and
    None when not on Colab.
    """
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import output

        output.enable_custom_widget_manager()
        return True
    except Exception as e:
        print(_MESSAGE.format(why=f"{type(e).__name__}: {e}"))
        return False
