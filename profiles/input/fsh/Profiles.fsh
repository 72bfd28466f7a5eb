// Profiles of the inputs (contract §1) and of the MeasureReports we write (contract §4).

Invariant: pts-1
Description: "A day is written: performedDateTime, or performedPeriod.start."
Expression: "performed.exists() and (performed is dateTime or performed.start.exists())"
Severity: #error

Invariant: pts-2
Description: "A day is written: effectiveDateTime, or effectivePeriod.start."
Expression: "effective.exists() and (effective is dateTime or effective.start.exists())"
Severity: #error

Invariant: pts-mr-1
Description: "measure is a versioned canonical of a fhir-pts Measure: https://fhir-pts.org/fhir/Measure/<id>|<version>."
Expression: "measure.startsWith('https://fhir-pts.org/fhir/Measure/') and measure.contains('|')"
Severity: #error

Profile: PtsIndexStentingProcedure
Parent: Procedure
Id: pts-index-stenting-procedure
Title: "Index stenting Procedure"
Description: "A venous stenting Procedure. The earliest completed one of a patient sets day 0; every matching Procedure on that same day belongs to the index procedure (contract §1)."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-1
* status = #completed
* code 1..1 MS
* code from IndexStentingVS (required)
* subject only Reference(Patient)
* performed[x] 1..1 MS
* bodySite MS
* bodySite from StentedSegmentVS (extensible)
* bodySite ^short = "Stented segment(s); else taken from the ICD-10-PCS body-part character"
* outcome MS
* outcome from TechnicalOutcomeVS (extensible)
* complication MS
* complication ^short = "pts#major-complication for a major complication of the index procedure"

Profile: PtsReinterventionProcedure
Parent: Procedure
Id: pts-reintervention-procedure
Title: "Reintervention Procedure"
Description: "A completed reintervention on the stented segment, dated after day 0 (contract §1). Its reason is reasonCode (stenosis/occlusion) or reasonReference to a patency Observation; outcome failure = not reopened."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-1
* status = #completed
* code 1..1 MS
* code from ReinterventionVS (required)
* subject only Reference(Patient)
* performed[x] 1..1 MS
* reasonCode MS
* reasonCode from ReinterventionReasonVS (extensible)
* reasonReference MS
* reasonReference only Reference(PtsStentPatencyObservation)
* outcome MS
* outcome from TechnicalOutcomeVS (extensible)

Profile: PtsStentPatencyObservation
Parent: Observation
Id: pts-stent-patency-observation
Title: "Stent patency finding"
Description: "Imaging of the stented segment after day 0: patent, stenosis > 50 % or occluded, or the % diameter reduction (contract §1)."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-2
* status from ObservationStatusAcceptedVS (required)
* code = $pts#stent-patency
* subject 1..1
* subject only Reference(Patient)
* effective[x] 1..1 MS
* value[x] 1..1 MS
* value[x] only CodeableConcept or Quantity
* valueCodeableConcept from PatencyStatusVS (required)
* valueQuantity.system = $ucum
* valueQuantity.code = #%
* method MS
* method from ImagingMethodVS (extensible)

Profile: PtsVillaltaTotalObservation
Parent: Observation
Id: pts-villalta-total-observation
Title: "Villalta total"
Description: "A Villalta total given without its items: sum of the 11 items, integer 0-33 (the ulcer is never added). Instead of a QuestionnaireResponse to Questionnaire villalta."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-2
* status from ObservationStatusAcceptedVS (required)
* code = $pts#villalta-total
* subject 1..1
* subject only Reference(Patient)
* effective[x] 1..1 MS
* value[x] 1..1 MS
* value[x] only integer
* valueInteger ^minValueInteger = 0
* valueInteger ^maxValueInteger = 33

Profile: PtsCiviq20TotalObservation
Parent: Observation
Id: pts-civiq20-total-observation
Title: "CIVIQ-20 raw total"
Description: "A CIVIQ-20 raw total given without its items: sum of the 20 items, integer 20-100 (GIS = (raw - 20) / 80 x 100 is derived). Instead of a QuestionnaireResponse to Questionnaire civiq-20."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-2
* status from ObservationStatusAcceptedVS (required)
* code = $pts#civiq20-total
* subject 1..1
* subject only Reference(Patient)
* effective[x] 1..1 MS
* value[x] 1..1 MS
* value[x] only integer
* valueInteger ^minValueInteger = 20
* valueInteger ^maxValueInteger = 100

ValueSet: ObservationStatusAcceptedVS
Id: observation-status-accepted
Title: "Observation statuses read"
Description: "The Observation statuses the adapters read (contract §1); every other status is ignored and reported."
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* http://hl7.org/fhir/observation-status#final
* http://hl7.org/fhir/observation-status#amended
* http://hl7.org/fhir/observation-status#corrected

Profile: PtsMeasureReport
Parent: MeasureReport
Id: pts-measure-report
Title: "fhir-pts summary MeasureReport"
Description: "A summary MeasureReport of one fhir-pts Measure (contract §4): counts as group.population, the score as group.measureScore, every other statistic (CI, p-value, quartiles, Kaplan-Meier) in the statistic and survival-curve extensions. Also meets the DEQM summary invariants deqm-0..9 that apply (checked by fhir_pts.conformance.check_measure_report)."
* ^version = "0.1.0"
* ^status = #draft
* obeys pts-mr-1
* status = #complete
* type = #summary
* extension contains DataIncomplete named dataIncomplete 0..* MS
* measure MS
* date 1..1 MS
* period MS
* improvementNotation MS
* extension contains ConceptMapUsed named conceptMapUsed 0..* MS
* group 1..* MS
* extension contains PoolingContext named poolingContext 0..1
* group.extension contains
    Statistic named statistic 0..* MS and
    SurvivalCurve named survivalCurve 0..* MS and
    Aggregate named aggregate 0..*
* group.population MS
* group.population.count 1..1 MS
* group.measureScore MS
