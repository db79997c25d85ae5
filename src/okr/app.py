"""create_app(): plugins, routes, templates, CSRF, sessions, error handling. Wiring only."""

import gc
import logging

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.logging.config import LoggingConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from okr import __version__
from okr.attribution.controllers import AttributionApiController, AttributionController
from okr.auth.controllers import AuthController
from okr.auth.middleware import build_middleware
from okr.bonus.routes import bonus_routes
from okr.dashboard.controllers import DashboardController
from okr.db.engine import create_engine
from okr.goals.controllers import GoalsApiController, GoalsController
from okr.home.controllers import HomeController
from okr.imports.controllers import RUNNER_KEY, ImportApiController, ImportPageController
from okr.imports.jobs import ImportRunner
from okr.kpis.controllers import kpi_routes
from okr.leads.controllers import LeadsApiController, LeadsController
from okr.lib import templating
from okr.lib.problems import handle_exception
from okr.planner.controllers import PlannerApiController, PlannerController
from okr.settings import PACKAGE_ROOT, Settings, get_settings
from okr.sla.controllers import SlaController


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the okr web application for `settings` (the process settings by default)."""
    settings = settings or get_settings()
    engine = create_engine(settings)
    alchemy = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit_include_redirects",  # one commit per request (2xx and 3xx)
    )

    imports = ImportRunner(settings)

    def _configure_templates(engine: JinjaTemplateEngine) -> None:
        templating.configure(engine.engine, settings)

    def _freeze_gc(_: Litestar) -> None:
        # Objects built at start-up live for the whole process; a full collection over them costs
        # ~55 ms and set every page's p99 (STYLE.md). Freeze them out of the collector.
        gc.collect()
        gc.freeze()

    return Litestar(
        route_handlers=[
            AuthController,
            DashboardController,
            ImportPageController,
            ImportApiController,
            AttributionController,
            AttributionApiController,
            GoalsController,
            GoalsApiController,
            PlannerController,
            PlannerApiController,
            HomeController,
            kpi_routes,
            SlaController,
            LeadsController,
            LeadsApiController,
            *bonus_routes,
            create_static_files_router(path="/static", directories=[PACKAGE_ROOT / "static"], name="static"),
        ],
        plugins=[SQLAlchemyPlugin(config=alchemy), HTMXPlugin()],
        middleware=build_middleware(settings, alchemy),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="okr_csrf",
            header_name="x-csrftoken",
            cookie_secure=settings.mode == "production",
            cookie_samesite="lax",
            # The API authenticates writes with bearer tokens, which a browser never sends by itself.
            exclude=["/api/"],
        ),
        template_config=TemplateConfig(
            directory=settings.templates_dir,
            engine=JinjaTemplateEngine,
            engine_callback=_configure_templates,
        ),
        exception_handlers={Exception: handle_exception},
        openapi_config=OpenAPIConfig(
            title="okr API",
            version=__version__,
            path="/api/docs",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="okr API token")
                }
            ),
            security=[{"bearer": []}],
        ),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="always",
            # A refused request is routine: one log line, no stack trace. Real errors keep theirs.
            disable_stack_trace={400, 401, 403, 404, 405, 409, 413, 422, 429},
        ),
        state=State({"settings": settings, RUNNER_KEY: imports}),
        on_startup=[imports.startup, _freeze_gc],
        # The plugin leaves an engine it was given open: each app closes its own connections.
        on_shutdown=[imports.shutdown, engine.dispose],
        debug=False,
    )


def app_from_env() -> Litestar:
    """Factory for `uvicorn --factory okr.app:app_from_env`."""
    logging.getLogger("okr").info("okr %s starting", __version__)
    return create_app()
