"""The one place that imports LiteLLM, lazily, once per process.

Importing litellm costs seconds and well over 100 MB, and it reads its configuration from the environment at
import time. Processes that never call a model (the ingress, the CLI, most tests) must not pay for it, so no
module of this package imports litellm at import time: they call `litellm_module()` when they need it.
The first call configures the import (local price map, no telemetry, no callbacks, quiet logs) and registers
the offline stand-in as the custom provider "offline".
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from types import ModuleType

from tenantq.settings import get_settings

_lock = threading.Lock()
_module: ModuleType | None = None


def litellm_module() -> ModuleType:
    """The configured litellm module; imported and set up on first use, thread-safe."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is None:
            _module = _import_and_configure()
        return _module


def _import_and_configure() -> ModuleType:
    settings = get_settings()
    if settings.llm.local_model_cost_map:
        # Read by litellm at import: without it, the import downloads the price map from GitHub.
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with warnings.catch_warnings():
        # Only litellm's own import-time deprecation chatter; every other warning stays an error in tests.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"litellm(\.|$)")
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=r"litellm(\.|$)")
        import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.turn_off_message_logging = True  # callbacks never see prompts or completions
    litellm.redact_messages_in_exceptions = True
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm.input_callback = []
    litellm.service_callback = []
    litellm.drop_params = True  # a route that lacks a parameter (e.g. response_format) still answers
    litellm.num_retries = 0  # tenacity in providers.llm owns retries and counts them
    litellm.disable_hf_tokenizer_download = True  # token counting never reaches the network
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from providers.offline import make_handler

    litellm.custom_provider_map = [{"provider": "offline", "custom_handler": make_handler(litellm)}]
    _build_models_now()
    return litellm


def _build_models_now() -> None:
    """Build litellm's deferred pydantic models (ModelResponse, Message, ...) here, not on first use.

    Pydantic warns (UserWarning) while building models whose TypedDicts use `ReadOnly`; built lazily, that
    warning would surface inside a job, where tests turn warnings into errors. Filters cannot follow it
    there (catch_warnings is process-global, not per task), so the models are built once, here, quietly.
    """
    import importlib

    import pydantic

    for name in _CHAT_PATH_MODULES:
        importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(is|are) using the `ReadOnly` qualifier",
                                category=UserWarning)
        for module_name, module in list(sys.modules.items()):
            if not module_name.startswith("litellm") or module is None:
                continue
            for value in list(vars(module).values()):
                if (isinstance(value, type) and issubclass(value, pydantic.BaseModel)
                        and value.__module__ == module_name and not value.__pydantic_complete__):
                    try:
                        value.model_rebuild()
                    except pydantic.PydanticUserError:
                        continue  # forward references only litellm's proxy resolves; never on our path


_CHAT_PATH_MODULES = (
    "litellm.types.utils",
    "litellm.llms.openai.openai",
    "litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response",
    "litellm.cost_calculator",
)
