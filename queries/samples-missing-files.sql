-- name: samples-missing-files
-- description: Active samples with no file of a kind (fastq, bam, cram, bai, crai, vcf, gvcf, tbi): none in S3 as of the last objects sync, and none a done run reported writing (outputs-missing checks those against S3)
-- params: kind
-- choices: kind=fastq|bam|cram|bai|crai|vcf|gvcf|tbi|other
SELECT s.sample_id,
       s.cohort,
       (SELECT count(*) FROM objects o
        WHERE o.sample_id = s.sample_id AND o.removed_at IS NULL) AS other_files,
       (SELECT group_concat(DISTINCT o.kind) FROM objects o
        WHERE o.sample_id = s.sample_id AND o.removed_at IS NULL) AS kinds_present
FROM samples s
WHERE s.status <> 'dropped'
  AND NOT EXISTS (SELECT 1 FROM objects o
                  WHERE o.sample_id = s.sample_id AND o.kind = :kind AND o.removed_at IS NULL)
  AND NOT EXISTS (SELECT 1 FROM outputs p WHERE p.sample_id = s.sample_id AND p.kind = :kind)
ORDER BY s.sample_id;
