"""dqt_hw.train: DQT quantization-aware training (optional extra ``train``: PyTorch) and
export of a trained network to the ``dqt_hw.net`` format.

``dqt_hw.train.data`` needs only NumPy (and scikit-learn for the digits); the trainer
(``dqt_hw.train.qat``, ``dqt_hw.train.trainer``) imports torch. Entry point:
``dqt-hw train`` or ``python -m dqt_hw.train``.
"""
