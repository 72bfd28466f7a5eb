// The project's own codes (contract §1). Each code here is used by src/fhir_pts/codes.py (tests/profiles checks
// both ways) or, for the two small code systems below, by the cohort scoring and the Questionnaires.

CodeSystem: PtsCodeSystem
Id: pts
Title: "fhir-pts codes"
Description: "Every project code of the fhir-pts data contract (§1): procedures, outcomes, patency findings and score totals that no standard terminology covers."
* ^url = "https://fhir-pts.org/fhir/CodeSystem/pts"
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* ^caseSensitive = true
* ^content = #complete
* #venous-stenting "Venous stenting" "Endovascular stent placement in a deep vein (iliac, femoral, inferior vena cava): an index stenting procedure, or a re-stenting when dated after it."
* #technical-success "Technical success" "Procedure outcome: the stenting achieved its technical goal (recanalisation, stent deployment, restored flow)."
* #technical-failure "Technical failure" "Procedure outcome: the stenting did not achieve its technical goal; a loss of every patency at day 0."
* #major-complication "Major complication" "Procedure complication: a major complication of the index procedure (SIR major: therapy, hospitalisation > 48 h, permanent sequelae or death)."
* #reintervention "Reintervention" "Any endovascular reintervention on the stented segment after the index procedure (angioplasty, thrombectomy, thrombolysis, re-stenting)."
* #stenosis "Stenosis > 50 %" "In-stent stenosis of more than 50 % of the diameter: a patency finding value, and a reintervention reason."
* #occlusion "Occlusion" "Reintervention reason: occlusion of the stented segment."
* #stent-patency "Stent patency status" "Observation code of a patency finding (imaging of the stented segment after the index procedure)."
* #patent "Patent" "Patency finding value: stent patent, stenosis of at most 50 %."
* #occluded "Occluded" "Patency finding value: stent occluded (100 % diameter reduction)."
* #villalta-total "Villalta total score" "Observation code of a Villalta total: sum of the 11 items, integer 0-33 (ulcer not added)."
* #civiq20-total "CIVIQ-20 raw total" "Observation code of a CIVIQ-20 total: raw sum of the 20 items, integer 20-100."

CodeSystem: VillaltaClassCodeSystem
Id: villalta-class
Title: "Villalta severity class"
Description: "Villalta post-thrombotic syndrome severity classes (contract §2): ulcer or total >= 15 severe; 10-14 moderate; 5-9 mild; 0-4 none. A separate code system so that `none` cannot be mistaken for a project code."
* ^url = "https://fhir-pts.org/fhir/CodeSystem/villalta-class"
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* ^caseSensitive = true
* ^content = #complete
* #none "No PTS" "Villalta total 0-4 and no venous ulcer."
* #mild "Mild PTS" "Villalta total 5-9 and no venous ulcer."
* #moderate "Moderate PTS" "Villalta total 10-14 and no venous ulcer."
* #severe "Severe PTS" "Villalta total 15 or more, or a venous ulcer."

CodeSystem: Civiq20DimensionCodeSystem
Id: civiq20-dimension
Title: "CIVIQ-20 dimension"
Description: "The four CIVIQ-20 dimensions. The Questionnaire civiq-20 tags each item with its dimension (Questionnaire.item.code), which is the data the scoring imputes within."
* ^url = "https://fhir-pts.org/fhir/CodeSystem/civiq20-dimension"
* ^version = "0.1.0"
* ^status = #draft
* ^experimental = false
* ^caseSensitive = true
* ^content = #complete
* #pain "Pain" "Pain dimension: q1-q4 (raw 4-20)."
* #physical "Physical" "Physical dimension: q5, q6, q7, q9 (raw 4-20)."
* #social "Social" "Social dimension: q8, q10, q11 (raw 3-15)."
* #psychological "Psychological" "Psychological dimension: q12-q20 (raw 9-45)."
