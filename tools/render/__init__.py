"""Forge's renderer: a PlanSpec of catalog components -> a Terraform workspace.

One module per tier (`network`, `edge`, `compute`, `datastores`, `s3`, `messaging`,
`observability`, `identity`), stack-wide pieces in `shared`, the file layout in `files`, and
the allow-list the pre-plan guard enforces in `allowlist`.
"""

from __future__ import annotations

from tools.render.allowlist import DATA_SOURCE_TYPES, RESOURCE_TYPES
from tools.render.context import RenderError
from tools.render.files import FILES, TEMPLATES, Backend, render_workspace_files

__all__ = [
    "DATA_SOURCE_TYPES",
    "FILES",
    "RESOURCE_TYPES",
    "TEMPLATES",
    "Backend",
    "RenderError",
    "render_workspace_files",
]
