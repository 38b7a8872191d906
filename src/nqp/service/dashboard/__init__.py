"""Static files of the live dashboard (``index.html``, ``app.js``, ``app.css``).

Plain HTML, CSS and JavaScript with no build step, served by
:mod:`nqp.service.api.routes.dashboard`; plotly.js comes from the installed ``plotly``
package. The package holds no Python code.
"""

__all__: list[str] = []
