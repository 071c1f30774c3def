"""Tools OpenAI hosts (``code_interpreter``, ``image_generation``,
``programmatic_tool_calling``; ``file_search`` runs here, ``tools.file_search``):
passed through to an upstream that speaks the Responses API natively
(an ``openai-responses`` provider), which runs them; their items
(``image_generation_call``...) come back as the upstream made them and go
back to it verbatim in later turns. With any other provider there is no one
to run them, so the request is a 400 naming the tool and saying what would
make it work (``engine.context`` decides, once the provider is known).
"""

from __future__ import annotations

from typing import Any

from openai.types.responses.response_code_interpreter_tool_call_param import ResponseCodeInterpreterToolCallParam
from openai.types.responses.response_input_item_param import ImageGenerationCall, Program, ProgramOutput

from responsa.protocol.errors import invalid
from responsa.tools.base import ToolType
from responsa.tools.client_calls import sdk_normaliser

TYPES = ("code_interpreter", "image_generation", "programmatic_tool_calling")


def parse_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    """Only the shape is checked here: the upstream validates its own tools."""
    if not all(isinstance(k, str) for k in tool):
        raise invalid(f"Invalid '{param}'.", param)
    return dict(tool)


def unsupported(tool: dict[str, Any], param: str, model: str) -> Exception:
    return invalid(f"'{param}' is a '{tool['type']}' tool, which OpenAI hosts: it runs only when the model is served "
                   f"by an 'openai-responses' provider (e.g. openai/...), and model '{model}' is not. Remove the tool "
                   "or choose such a model.", f"{param}.type", "unsupported_value")


TOOL_TYPE = ToolType(
    name="hosted", tool_types=TYPES, parse_tool=parse_tool,
    input_items={"image_generation_call": sdk_normaliser(ImageGenerationCall, "ig"),
                 "code_interpreter_call": sdk_normaliser(ResponseCodeInterpreterToolCallParam, "ci"),
                 "program": sdk_normaliser(Program, "prg"),
                 "program_output": sdk_normaliser(ProgramOutput, "prgo")})
