"""A local stand-in for the Socrata SODA 2.1 API: `soql` parses queries, `server` serves them.

Kept empty on purpose so importing the package stays cheap; import the submodules directly.
"""

from __future__ import annotations
