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
import threading
import warnings
from types import ModuleType

from core.settings import get_settings

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
    quiet_third_party_warnings()
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
    return litellm


def quiet_third_party_warnings() -> None:
    """Silence, for the life of the process, the warnings litellm's import and first calls raise that say
    nothing about our code, each by category and module (pyproject's pytest filters name the same ones).

    litellm's TypedDicts use `ReadOnly`, and pydantic warns (UserWarning, from its schema builder) each time
    it builds one of litellm's models, lazily, inside a job; its import raises deprecation chatter of its own.
    """
    warnings.filterwarnings("ignore", message=r".*using the `ReadOnly` qualifier", category=UserWarning,
                            module=r"pydantic\._internal\._generate_schema")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"litellm(\.|$)")
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=r"litellm(\.|$)")
