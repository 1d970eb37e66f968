"""The offline stand-in: LiteLLM's custom provider "offline", the default model where no provider key is set.

It runs inside LiteLLM (registered by providers.runtime) rather than beside it, so an offline job takes the
same path as a real one: routing, fallbacks, token usage, cost (zero) and the ModelResponse shape. It writes
from the job's own context (`providers.drafts`), deterministically, and never calls the network.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from providers.drafts import write

MODEL = "offline/tenantq-draft"
NOTE = "written by the offline stand-in, not a language model"


def make_handler(litellm: ModuleType) -> Any:
    """An instance of the litellm.CustomLLM subclass; built here because litellm is imported lazily."""

    class OfflineLLM(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        """Answers chat completions from the request's metadata; completion and acompletion alike."""

        def completion(self, **kwargs: Any) -> Any:
            return respond(litellm, kwargs)

        async def acompletion(self, **kwargs: Any) -> Any:
            return respond(litellm, kwargs)

    return OfflineLLM()


def respond(litellm: ModuleType, call: dict[str, Any]) -> Any:
    """The ModelResponse for one call as LiteLLM hands it to a custom provider (keyword arguments)."""
    messages: list[dict[str, Any]] = list(call.get("messages") or [])
    optional: dict[str, Any] = call.get("optional_params") or {}
    litellm_params: dict[str, Any] = call.get("litellm_params") or {}
    metadata: dict[str, Any] = litellm_params.get("metadata") or {}
    schema = _requested_schema(optional.get("response_format"), metadata)
    kind = str(metadata.get("kind") or "")
    text = write(kind, metadata, messages, schema)

    counting_model = "gpt-4o-mini"  # a bundled tokenizer: the stand-in has none of its own
    prompt_tokens = int(litellm.token_counter(model=counting_model, messages=messages,
                                              use_default_image_token_count=True))
    completion_tokens = int(litellm.token_counter(model=counting_model, text=text))
    response = call.get("model_response") or litellm.ModelResponse()
    response.model = str(call.get("model") or MODEL.split("/", 1)[1])
    response.choices = [litellm.Choices(index=0, finish_reason="stop",
                                        message=litellm.Message(role="assistant", content=text))]
    response.usage = litellm.Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                   total_tokens=prompt_tokens + completion_tokens)
    return response


def _requested_schema(response_format: Any, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema asked for: from response_format, else from the metadata the client adds."""
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_schema":
            wrapper = response_format.get("json_schema") or {}
            schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
            return schema if isinstance(schema, dict) else {"type": "object"}
        if response_format.get("type") == "json_object":
            return {"type": "object"}
    schema = metadata.get("json_schema")
    return schema if isinstance(schema, dict) else None
