"""The bonus feature's route handlers, registered by `okr.app` as one list."""

from okr.bonus.controllers import BonusApiController, BonusController
from okr.bonus.export_controllers import ExportApiController, ExportController
from okr.bonus.plan_controllers import PlanApiController, PlanController
from okr.bonus.projection_controllers import ProjectionApiController, ProjectionController
from okr.bonus.statement_controllers import StatementApiController, StatementController

bonus_routes: list[type] = [
    BonusController,
    BonusApiController,
    PlanController,
    PlanApiController,
    ExportController,
    ExportApiController,
    StatementController,
    StatementApiController,
    ProjectionController,
    ProjectionApiController,
]
