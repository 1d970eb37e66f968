"""The master data a fresh fleet starts with: system prompts, agent templates and the offline model.

Seeding only inserts what is missing, so an operator's edits in the master database survive restarts.
"""

from __future__ import annotations

from importlib import resources

from core.settings import OFFLINE_MODEL
from schemas.agents import AgentTemplate, ModelConfig
from tenancy.mongo import master_db
from tenancy.sandbox.render import check

PROMPT_KINDS = ("email_reply", "chat_draft", "erp_analysis")

TEMPLATES = [
    AgentTemplate(
        template_id="default", name="Assistant", personality="helpful and precise", tonality="friendly",
        response_style="concise", dos=["answer the question asked"], donts=["invent facts"],
        language="English", prompts={kind: kind for kind in PROMPT_KINDS},
    ),
    AgentTemplate(
        template_id="car-dealer", name="Sales Assistant", personality="warm, knowledgeable about cars",
        tonality="friendly and professional", response_style="short paragraphs, one clear next step",
        dos=["offer a test drive", "mention financing options when price comes up"],
        donts=["promise prices or availability not confirmed by the dealer", "pressure the customer"],
        language="English", prompts={kind: kind for kind in PROMPT_KINDS},
    ),
    AgentTemplate(
        template_id="erp-analyst", name="ERP Analyst", personality="rigorous and business-minded",
        tonality="factual", response_style="structured, amounts first", donts=["speculate without data"],
        language="English", prompts={kind: kind for kind in PROMPT_KINDS},
        mcp_servers=["erp"], allowed_tools=[],
    ),
]

MODELS = [ModelConfig(name="offline", model=OFFLINE_MODEL)]


def prompt_source(name: str) -> str:
    """A bundled prompt; it passes the checks every saved prompt passes (TENANTQ_TEMPLATE_*)."""
    source = resources.files("tenancy.prompts").joinpath(f"{name}.j2").read_text()
    check(source)
    return source


def ensure_defaults() -> None:
    db = master_db()
    for kind in PROMPT_KINDS:
        db.system_prompts.update_one(
            {"_id": kind}, {"$setOnInsert": {"template": prompt_source(kind)}}, upsert=True
        )
    for template in TEMPLATES:
        db.agent_templates.update_one(
            {"_id": template.template_id},
            {"$setOnInsert": template.model_dump(exclude={"template_id"}, exclude_none=True)}, upsert=True,
        )
    for model in MODELS:
        db.model_configs.update_one(
            {"_id": model.name}, {"$setOnInsert": model.model_dump(exclude={"name"}, exclude_none=True)},
            upsert=True,
        )
