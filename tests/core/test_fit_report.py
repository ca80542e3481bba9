"""What a run says about its own fit: typed verdicts first, sentences only at the edge."""

from tlstudio.core.report.fit_report import Selection, diagnose, diagnosis_sentences, selection_sentence


def test_underfit_and_overfit_are_typed_verdicts():
    assert diagnose(0.80, 0.78, 0.90).underfit and not diagnose(0.88, 0.86, 0.90).underfit
    assert diagnose(0.99, 0.85, 0.90).overfit and not diagnose(0.95, 0.90, 0.90).overfit
    assert diagnose(0.80, 0.78, None).underfit is False  # no probe to compare with: no verdict
    assert len(diagnosis_sentences(diagnose(0.70, 0.55, 0.90).to_dict())) == 2
    assert diagnosis_sentences(diagnose(0.95, 0.93, 0.94).to_dict()) == []


def test_the_selection_record_round_trips_and_always_renders():
    for method in ("cross-validation", "selection split", "last epoch"):
        record = Selection(method, "balanced_accuracy", ("epoch",), 12, folds=5, fraction=0.15).to_dict()
        assert record["chose"] == ["epoch"] and selection_sentence(record, 40)
