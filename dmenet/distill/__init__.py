"""Distill-DBDGAN (Jonna, Medhi & Sahay, ACM TOMM 2023): teacher, compact student, three discriminators.

Modules: ``models/`` (teacher, student, EfficientNet encoders, discriminators), ``losses`` (content, feature,
consistency, adversarial), ``data`` (labelled blur-detection crops + sharp negatives + cached soft targets),
``cache_dmenet`` (DMENet-lite soft targets, milestone D0), ``train`` (teacher / kd / joint stages), ``summary``
(parameters and MACs), ``method`` (registry estimators). See docs/distill.md.
"""
