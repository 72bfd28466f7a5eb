// Statistics that MeasureReport has no element for (contract §4: CIs, p-values, quartiles, Kaplan-Meier points),
// modelled on R5 Evidence.statistic: statistic name, value, CI (low, high, level), p-value, sample size.

Extension: Statistic
Id: statistic
Title: "Statistic"
Description: "One named statistic of an analysis: a row of results.csv (measure, statistic, value, ci_low, ci_high, p_value, n) carried on MeasureReport.group. On Measure.group it declares (name only) a statistic the reports of that measure carry. Modelled on R5 Evidence.statistic (quantity, attributeEstimate confidence interval / p-value, sampleSize)."
Context: MeasureReport.group, MeasureReport.group.stratifier.stratum, Measure.group
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* extension contains
    name 1..1 and
    value 0..1 and
    unit 0..1 and
    ciLow 0..1 and
    ciHigh 0..1 and
    ciLevel 0..1 and
    pValue 0..1 and
    sampleSize 0..1 and
    method 0..1
* extension[name] ^short = "Statistic name, as in the statistic column of results.csv (e.g. proportion, km_12m, coef:age)"
* extension[name].value[x] only string
* extension[value] ^short = "Point estimate (absent when it cannot be computed, e.g. an empty cohort)"
* extension[value].value[x] only decimal
* extension[unit] ^short = "UCUM unit of value, ciLow and ciHigh (mo, a, 1, {score})"
* extension[unit].value[x] only code
* extension[ciLow] ^short = "Lower bound of the confidence interval"
* extension[ciLow].value[x] only decimal
* extension[ciHigh] ^short = "Upper bound of the confidence interval"
* extension[ciHigh].value[x] only decimal
* extension[ciLevel] ^short = "Confidence level of the interval, a fraction (0.95)"
* extension[ciLevel].value[x] only decimal
* extension[pValue] ^short = "Two-sided p-value"
* extension[pValue].value[x] only decimal
* extension[sampleSize] ^short = "Number of patients the statistic was computed on (the n column)"
* extension[sampleSize].value[x] only integer
* extension[method] ^short = "How it was computed, free text (e.g. Clopper-Pearson, exact, normal approximation)"
* extension[method].value[x] only string

Extension: SurvivalCurve
Id: survival-curve
Title: "Survival curve"
Description: "A Kaplan-Meier curve on MeasureReport.group: one point per step, time in months from the index procedure (days / 30.4375), estimate with its 95 % CI (log-log) and the number at risk."
Context: MeasureReport.group
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* extension contains
    name 1..1 and
    point 0..*
* extension[name] ^short = "Curve name (e.g. kaplan-meier)"
* extension[name].value[x] only string
* extension[point] ^short = "One step of the curve"
* extension[point].extension contains
    time 1..1 and
    estimate 1..1 and
    ciLow 0..1 and
    ciHigh 0..1 and
    atRisk 1..1
* extension[point].extension[time] ^short = "Time in months"
* extension[point].extension[time].value[x] only decimal
* extension[point].extension[estimate] ^short = "Survival (patency) estimate, 0..1"
* extension[point].extension[estimate].value[x] only decimal
* extension[point].extension[ciLow] ^short = "Lower 95 % confidence bound"
* extension[point].extension[ciLow].value[x] only decimal
* extension[point].extension[ciHigh] ^short = "Upper 95 % confidence bound"
* extension[point].extension[ciHigh].value[x] only decimal
* extension[point].extension[atRisk] ^short = "Number of patients at risk at that time"
* extension[point].extension[atRisk].value[x] only integer

Extension: DataIncomplete
Id: data-incomplete
Title: "Data incomplete"
Description: "The results were computed from incomplete data: one sentence per contract input the source could not provide (e.g. a FHIR server that holds no AdverseEvent, a Bulk Data export whose error files report failed resources). Also listed in problems.csv and at the top of report.html."
Context: MeasureReport
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* value[x] only string
* valueString 1..1

Extension: ConceptMapUsed
Id: concept-map-used
Title: "ConceptMap used"
Description: "A ConceptMap that mapped site-local codes to the contract's codes for this run (fhir-pts run --concept-map): its canonical and business version when it has them, where it was read (a file, with the SHA-256 of its bytes, or a FHIR server, with the ConceptMap's URL and version id). One per ConceptMap; none when the data used the contract's codes only."
Context: MeasureReport
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* extension contains
    canonical 0..1 and
    source 1..1 and
    location 1..1 and
    sha256 0..1
* extension[canonical] ^short = "ConceptMap.url, with |version when ConceptMap.version is set"
* extension[canonical].value[x] only canonical
* extension[source] ^short = "Where it was read: file or server"
* extension[source].value[x] only code
* extension[location] ^short = "The file as given on the command line, or the server's ConceptMap/<id>/_history/<vid> URL"
* extension[location].value[x] only string
* extension[sha256] ^short = "SHA-256 (hex) of the ConceptMap file's bytes"
* extension[sha256].value[x] only string
