"""Order files: the order exports of Tmall/Taobao, JD, Douyin shops and POS systems."""

from .layouts import LAYOUTS, recognised
from .pipeline import OrderImportResult, UnknownLayout, import_order_file

__all__ = ["LAYOUTS", "OrderImportResult", "UnknownLayout", "import_order_file", "recognised"]
