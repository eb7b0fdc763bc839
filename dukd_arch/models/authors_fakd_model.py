"""The authors' ``model_type: FAKD`` files, run by this project's feature-KD model.

Their schema::

    train:
      feature_distillation: {positions: ['conv_first', 10, 21, 'conv_after_body'], type: SA}
      feature_opt: {type: L1Loss, loss_weight: 10.0, reduction: mean}

becomes one ``feature_kd_opt`` entry of ``FeatureKDModel``: ``type: SA`` (spatial affinity) is ``FAKDLoss``;
each position is the output of the same module in student and teacher (an integer ``i`` is residual block /
group ``body.i``; ``positions: {g: [...], t: [...]}`` pairs different ones); their L1 criterion on the
affinities is FAKDLoss's own. They summed the terms over positions, FAKDLoss averages them: the weight is
``feature_opt.loss_weight`` x the number of positions, so the loss has their value. Unlike their model,
whose sum through ``torch.tensor([...])`` cut the gradient, the feature term trains the student.
"""
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from .feature_kd_model import OPTION, FeatureKDModel

AUTHORS_KEYS = ('feature_distillation', 'feature_opt')


def _module(position, role):
    if isinstance(position, int) and not isinstance(position, bool) or str(position).isdigit():
        return f'body.{int(position)}'
    if position in ('conv_first', 'conv_after_body'):
        return position
    raise ValueError(f"train.feature_distillation.positions: {position!r} ({role}) is not one the authors' FAKD "
                     "reads: 'conv_first', a block index such as 10, or 'conv_after_body'. For any other module "
                     'use model_type FeatureKDModel with feature_kd_opt (docs/feature_kd.md).')


def translate_authors_fakd(train_opt: dict) -> dict:
    """The ``feature_kd_opt`` entry equivalent to the authors' ``feature_distillation`` + ``feature_opt``."""
    spec = train_opt.get('feature_distillation')
    if not spec:
        raise ValueError('model_type FAKD needs train.feature_distillation: {positions: [...], type: SA} '
                         "(the authors' schema), or use model_type FeatureKDModel with feature_kd_opt")
    if spec.get('type', 'SA') != 'SA':
        raise ValueError(f"train.feature_distillation.type: {spec.get('type')!r} is not supported here; only SA "
                         '(spatial affinity, FAKD) matches a loss of this project exactly. For attention transfer '
                         'or FitNet use model_type FeatureKDModel with AttentionTransferLoss / FitNetLoss.')
    positions = spec.get('positions')
    if isinstance(positions, dict):
        student, teacher = positions.get('g') or [], positions.get('t') or []
    else:
        student = teacher = positions or []
    if not student or len(student) != len(teacher):
        raise ValueError('train.feature_distillation.positions: give a non-empty list, or {g: [...], t: [...]} of '
                         f'equal length (got {positions!r})')
    feature_opt = dict(train_opt.get('feature_opt') or {'type': 'L1Loss', 'loss_weight': 1.0})
    if feature_opt.get('type') != 'L1Loss' or feature_opt.get('reduction', 'mean') != 'mean':
        raise ValueError(f'train.feature_opt: {feature_opt} is not supported; the affinity loss here is the mean '
                         'L1 distance (feature_opt: {type: L1Loss, loss_weight: w, reduction: mean})')
    pairs = [[_module(g, 'student'), _module(t, 'teacher')] for g, t in zip(student, teacher)]
    weight = float(feature_opt.get('loss_weight', 1.0)) * len(pairs)
    return {'type': 'FAKDLoss', 'layers': pairs, 'loss_weight': weight}


@MODEL_REGISTRY.register()
class AuthorsFAKDModel(FeatureKDModel):
    """``model_type: FAKD`` (the authors' name and schema) = FeatureKDModel with the translated FAKD term."""

    option_families = ('authors_fakd', )  # the option schema accepts feature_distillation / feature_opt

    def __init__(self, opt):
        train_opt = opt.get('train')
        if opt.get('is_train', True) and train_opt is not None:
            if train_opt.get(OPTION):
                raise ValueError(f"model_type FAKD takes the authors' train.feature_distillation, not train.{OPTION}; "
                                 'use model_type FeatureKDModel for feature_kd_opt')
            entry = translate_authors_fakd(train_opt)
            for key in AUTHORS_KEYS:
                train_opt.pop(key, None)
            train_opt[OPTION] = [entry]
            get_root_logger().info(f"Authors' FAKD options translated to train.{OPTION}: {entry}")
        super().__init__(opt)


MODEL_REGISTRY._do_register('FAKD', AuthorsFAKDModel)  # the authors' model_type
