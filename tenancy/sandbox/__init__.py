"""The sandbox of tenants' prompt templates: Jinja2's immutable sandbox, with limits on size, time and memory.

Prompt templates are tenant data. Jinja2's sandbox keeps them from reaching outside their variables; this
package keeps them from taking a process down: a template is checked when it is saved (`check`), and every
render runs against a budget (`limits`) that its operators, filters, methods, loops, calls and writes draw on
(`environment`), with sizes bounded before anything is built (`sizes`). Breaking a limit raises
`TemplateLimitExceeded` naming the setting. `render` is the one way in.
"""
