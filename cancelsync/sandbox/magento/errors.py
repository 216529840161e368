"""Magento's REST error envelope, its message templates and its PHP-flavoured numbers.

Magento answers errors as ``{"message": template, "parameters": [...] | {...}}``
with the template left untranslated (``%1`` or ``%name`` placeholders);
``parameters`` is left out when the phrase has none, and ``errors`` appears only for
aggregate input failures. Whole floats are serialised without a fraction (PHP's
``json_encode(2.0)`` gives ``2``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cancelsync.sandbox.common import SimResponse

Params = list[Any] | dict[str, Any] | None

# Routing, input and authorization (Magento\Framework\Webapi, Integration, Oauth).
NO_ROUTE = "Request does not match any route."
NO_SUCH_ENTITY = (
    "The entity that was requested doesn't exist. Verify the entity and try again."
)
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
REQUIRED_FIELD = "%fieldName is a required field."
OAUTH_REQUIRED = '"%fieldName" is required. Enter and try again.'
MULTIPLE_INPUT = "One or more input exceptions have occurred."
SIGNATURE_METHOD = "Signature method %1 is not supported"
SIGNATURE_INVALID = "The signature is invalid. Verify and try again."
NONCE_USED = "The nonce is already being used by the consumer with ID %1"
OAUTH_VERSION = 'The "%1" Oauth version isn\'t supported.'
TOKEN_LENGTH = "The token length is invalid. Check the length and try again."
CONSUMER_KEY_LENGTH = "Consumer key is not the correct length"
CONSUMER_UNKNOWN = "A consumer having the specified key does not exist"
TOKEN_UNKNOWN = "Specified token does not exist"
TOKEN_NOT_CONSUMERS = "Token is not associated with the specified consumer"
MAX_PAGE_SIZE = "Maximum SearchCriteria pageSize is %max"
INVALID_TYPE = (
    'The "%value" value\'s type is invalid. The "%type" type was expected. '
    "Verify and try again."
)
INVALID_SORT = (
    'The sort order "%1" is invalid. Select a different sort order and try again.'
)
DECODING_ERROR = "Decoding error."
CONTENT_TYPE_EMPTY = "Content-Type header is empty."
CONTENT_TYPE_UNKNOWN = "Server cannot understand Content-Type HTTP header media type %1"
INTERNAL_ERROR = (
    "Internal Error. Details are available in Magento log file. Report ID: %1"
)

# Refund (Magento\Sales\Model\RefundOrder and its validators).
CM_VALIDATION_PREFIX = "Creditmemo Document Validation Error(s):\n"
CM_BAD_STATE = "A creditmemo can not be created when an order has a status of %1"
CM_NOT_ALLOWED = "The order does not allow a creditmemo to be created."
CM_ITEM_NOT_IN_ORDER = (
    "The creditmemo contains product item that is not part of the original order."
)
CM_ITEM_QTY = "The quantity to refund must not be greater than the unrefunded quantity."
CM_SKU_NOT_IN_ORDER = (
    'The creditmemo contains product SKU "%1" that is not part of the original order.'
)
CM_SKU_QTY = (
    "The quantity to creditmemo must not be greater than the unrefunded quantity"
    ' for product SKU "%1".'
)
CM_TOTAL_POSITIVE = "The credit memo's total must be positive."
CM_NO_PRODUCTS = "You can't create a creditmemo without products."
CM_MONEY = "The most money available to refund is %1."
CM_SHIPPING_MAX = "Maximum shipping amount allowed to refund is: %1"
CM_INVALID_QTY = 'We found an invalid quantity to refund item "%1".'
CM_RETURN_NOT_IN_MEMO = 'The "%1" product is not part of the current creditmemo.'
CM_RETURN_NOT_IN_ORDER = (
    "The return to stock argument contains product item that is not part of the"
    " original order."
)
CM_CANNOT_CANCEL = "You can not cancel Credit Memo"
CM_COMMENT_NOT_SAVED = "Could not save the creditmemo comment."

# Orders (Magento\Sales\Model\Order, OrderManagement).
HOLD_NOT_AVAILABLE = "A hold action is not available."
UNHOLD_NOT_AVAILABLE = "You cannot remove the hold."
COMMENT_BAD_STATUS = (
    'Unable to add comment: The status "%1" is not part of the order status history.'
)

_report_ids = itertools.count(0x5F3A1C0)


class MagentoError(Exception):
    """A Magento REST error: HTTP status plus the untranslated envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: Params = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(render(message, parameters))
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    @property
    def rendered(self) -> str:
        """The message with its placeholders filled in (what a merchant reads)."""
        return render(self.message, self.parameters)

    def body(self) -> dict[str, Any]:
        """The JSON envelope, keys left out when empty as Magento does."""
        out: dict[str, Any] = {"message": self.message}
        if self.errors:
            out["errors"] = self.errors
        if self.parameters:
            out["parameters"] = self.parameters
        return out

    def response(self) -> SimResponse:
        return json_response(self.body(), self.status)


def bad_request(message: str, parameters: Params = None) -> MagentoError:
    return MagentoError(400, message, parameters)


def not_found() -> MagentoError:
    return MagentoError(404, NO_SUCH_ENTITY)


def internal_error() -> MagentoError:
    """The production-mode mask for anything that is not a LocalizedException."""
    return MagentoError(500, INTERNAL_ERROR, [f"webapi-{next(_report_ids):013x}"])


def invalid_type(value: Any, type_name: str) -> MagentoError:
    return bad_request(INVALID_TYPE, {"value": php_str(value), "type": type_name})


def render(template: str, parameters: Params) -> str:
    """Fill ``%1``/``%name`` placeholders the way Magento's Phrase renderer does."""
    if not parameters:
        return template
    if isinstance(parameters, dict):
        pairs = [(f"%{k}", v) for k, v in parameters.items()]
    else:
        pairs = [(f"%{i}", v) for i, v in enumerate(parameters, start=1)]
    # Longest keys first so %10 is not eaten by %1.
    for key, value in sorted(pairs, key=lambda kv: -len(kv[0])):
        template = template.replace(key, php_str(value))
    return template


def php_str(value: Any) -> str:
    """PHP's string conversion of a scalar (floats with precision 14, no ``.0``)."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        if value.is_integer():
            return (
                "-0"
                if value == 0 and math.copysign(1.0, value) < 0
                else str(int(value))
            )
        text = f"{value:.14G}"
        return re.sub(r"E([+-])0*(\d)", r"E\1\2", text)
    if value is None:
        return ""
    return str(value)


def money(value: float) -> float:
    """Round like PHP ``round($x, 2)`` (half away from zero), not banker's rounding."""
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01"), ROUND_HALF_UP))


def phpify(obj: Any) -> Any:
    """Whole floats become integers, recursively, as PHP's json_encode prints them."""
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    if isinstance(obj, dict):
        return {k: phpify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [phpify(v) for v in obj]
    return obj


def json_response(payload: Any, status: int = 200) -> SimResponse:
    """A JSON reply with PHP-style numbers and Magento's content type."""
    body = json.dumps(phpify(payload)).encode("utf-8")
    return SimResponse(
        status, body, {"Content-Type": "application/json; charset=utf-8"}
    )
