"""`crew token new NAME --role ROLE`: a fresh API token and the CREW_API_TOKENS entry for it.

The entry holds only the token's SHA-256, so the configuration (environment, secrets store,
compose file) never contains a usable token; the token itself is shown once, here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.render import err, out, print_json
from crew.access import Role, new_token, parse_token_entry, token_entry

token_app = typer.Typer(
    help="API tokens: principals with a role (viewer, submitter, approver).",
    no_args_is_help=True,
)


@token_app.command("new")
def new(
    name: Annotated[
        str, typer.Argument(help="Principal name: who uses it (recorded as the actor).")
    ],
    role: Annotated[
        Role, typer.Option(help="viewer reads; submitter also posts goals; approver also decides.")
    ] = Role.VIEWER,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON on stdout.")
    ] = False,
) -> None:
    """Make a token for NAME; prints the token (shown once) and its CREW_API_TOKENS entry.

    Append the entry to CREW_API_TOKENS (comma-separated) and hand the token to NAME, who sends
    it as `Authorization: Bearer <token>`."""
    token = new_token()
    entry = token_entry(name, role, token)
    try:
        parse_token_entry(entry)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        print_json({"principal": name, "role": role.value, "token": token, "entry": entry})
        return
    out.print(f"token (give it to {name}; it is not stored anywhere):\n  {token}", soft_wrap=True)
    out.print(f"CREW_API_TOKENS entry (only its hash):\n  {entry}", soft_wrap=True)
